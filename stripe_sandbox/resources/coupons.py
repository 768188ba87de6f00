"""Coupons: create (``percent_off`` or ``amount_off`` + ``currency``; ``duration`` once / repeating / forever;
``max_redemptions``; ``redeem_by``), retrieve, update (name, metadata), delete, list."""

from __future__ import annotations

from typing import Any

from ..billing.discounts import get_coupon, new_coupon
from ..events import changed, emit
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj


@route("POST", "/v1/coupons", params=(
    "id", "percent_off", "amount_off", "currency", "duration", "duration_in_months", "max_redemptions",
    "redeem_by", "name", "metadata", "applies_to", "currency_options"))
def create(sb: Any, p: Params) -> Obj:
    coupon = new_coupon(sb, p)
    coupon["metadata"] = merge_metadata({}, p.raw("metadata"))
    sb.store.add(coupon)
    emit(sb, "coupon.created", coupon)
    return coupon


@route("GET", "/v1/coupons/{coupon_id}")
def retrieve(sb: Any, p: Params, coupon_id: str) -> Obj:
    return get_coupon(sb, coupon_id, "id")


@route("POST", "/v1/coupons/{coupon_id}", params=("name", "metadata", "currency_options"))
def update(sb: Any, p: Params, coupon_id: str) -> Obj:
    coupon = get_coupon(sb, coupon_id, "id")
    before = dict(coupon)
    if "name" in p:
        coupon["name"] = p.optional_str("name")
    if "metadata" in p:
        coupon["metadata"] = merge_metadata(coupon["metadata"], p.raw("metadata"))
    sb.store.save(coupon)
    previous = changed(coupon, before)
    if previous:
        emit(sb, "coupon.updated", coupon, previous)
    return coupon


@route("DELETE", "/v1/coupons/{coupon_id}")
def delete(sb: Any, p: Params, coupon_id: str) -> Obj:
    # Discounts already applied keep working: they hold the coupon id, and the coupon stays readable
    # through them, as on Stripe; only new redemptions become impossible.
    coupon = get_coupon(sb, coupon_id, "id")
    emit(sb, "coupon.deleted", coupon)
    coupon["valid"] = False
    sb.store.save(coupon)
    sb.store.set_kv(f"coupon_deleted:{coupon_id}", True)
    return {"id": coupon_id, "object": "coupon", "deleted": True}


@route("GET", "/v1/coupons", params=(*LIST_PARAMS, "created"))
def list_(sb: Any, p: Params) -> Obj:
    return paginate(sb.store, sb.store.collection("coupon"), p, "/v1/coupons",
                    lambda c: not sb.store.kv.get(f"coupon_deleted:{c['id']}"))
