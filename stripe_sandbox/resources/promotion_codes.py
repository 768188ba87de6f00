"""Promotion codes: customer-facing codes for a coupon (``promotion[type]=coupon``, ``promotion[coupon]``, as
API versions since 2025 nest it), with ``code``, ``active``, ``max_redemptions``, ``expires_at``,
``customer`` and ``restrictions``; create, retrieve, update, list."""

from __future__ import annotations

import secrets
import string
from typing import Any

from ..billing.discounts import get_coupon
from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj


def get_promotion_code(sb: Any, promo_id: str, param: str = "id") -> Obj:
    promo = sb.store.get(promo_id, "promotion_code")
    if promo is None:
        raise no_such("promotion code", promo_id, param)
    return promo


def _restrictions(p: Params | None) -> Obj:
    out: Obj = {"first_time_transaction": False, "minimum_amount": None, "minimum_amount_currency": None}
    if p is None:
        return out
    p.only("first_time_transaction", "minimum_amount", "minimum_amount_currency", "currency_options")
    out["first_time_transaction"] = bool(p.bool("first_time_transaction", False))
    out["minimum_amount"] = p.int("minimum_amount", minimum=0)
    currency = (p.optional_str("minimum_amount_currency") or "").lower() or None
    if (out["minimum_amount"] is None) != (currency is None):
        raise invalid_request("minimum_amount and minimum_amount_currency go together.",
                              param="restrictions[minimum_amount_currency]")
    out["minimum_amount_currency"] = currency
    return out


@route("POST", "/v1/promotion_codes", params=(
    "promotion", "code", "active", "customer", "customer_account", "expires_at", "max_redemptions", "metadata",
    "restrictions"))
def create(sb: Any, p: Params) -> Obj:
    promotion = p.dict("promotion", required=True)
    assert promotion is not None
    promotion.only("type", "coupon")
    promotion.str("type", required=True, choices=("coupon",))
    coupon_id = promotion.str("coupon", required=True)
    assert coupon_id is not None
    get_coupon(sb, coupon_id, "promotion[coupon]")
    code = p.optional_str("code") or "".join(secrets.choice(string.ascii_uppercase + string.digits)
                                             for _ in range(8))
    if not code.isalnum() or len(code) > 500:
        raise invalid_request("A promotion code holds only letters and digits.", param="code")
    for other in sb.store.collection("promotion_code", "code", code).ids:
        if sb.store.objects[other]["active"]:
            raise invalid_request(f"An active promotion code with `code: {code}` already exists.", param="code",
                                  code="resource_already_exists")
    customer = p.optional_str("customer")
    if customer is not None and sb.store.get(customer, "customer") is None:
        raise no_such("customer", customer, "customer")
    now = sb.clock.now_int()
    expires_at = p.int("expires_at")
    if expires_at is not None and expires_at <= now:
        raise invalid_request("expires_at must be in the future.", param="expires_at")
    promo: Obj = {
        "id": new_id("promo", 24),
        "object": "promotion_code",
        "active": p.bool("active", True),
        "code": code,
        "created": now,
        "customer": customer,
        "customer_account": None,
        "expires_at": expires_at,
        "livemode": False,
        "max_redemptions": p.int("max_redemptions", minimum=1),
        "metadata": merge_metadata({}, p.raw("metadata")),
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": _restrictions(p.dict("restrictions")),
        "times_redeemed": 0,
    }
    sb.store.add(promo)
    emit(sb, "promotion_code.created", promo)
    return promo


@route("GET", "/v1/promotion_codes/{promo_id}")
def retrieve(sb: Any, p: Params, promo_id: str) -> Obj:
    return get_promotion_code(sb, promo_id)


@route("POST", "/v1/promotion_codes/{promo_id}", params=("active", "metadata", "restrictions"))
def update(sb: Any, p: Params, promo_id: str) -> Obj:
    promo = get_promotion_code(sb, promo_id)
    before = dict(promo)
    if "active" in p:
        promo["active"] = bool(p.bool("active", True))
    if "metadata" in p:
        promo["metadata"] = merge_metadata(promo["metadata"], p.raw("metadata"))
    sb.store.save(promo)
    previous = changed(promo, before)
    if previous:
        emit(sb, "promotion_code.updated", promo, previous)
    return promo


@route("GET", "/v1/promotion_codes", params=(
    *LIST_PARAMS, "active", "code", "coupon", "customer", "customer_account", "created"))
def list_(sb: Any, p: Params) -> Obj:
    active = p.bool("active")
    code = p.optional_str("code")
    coupon = p.optional_str("coupon")
    customer = p.optional_str("customer")

    def where(promo: Obj) -> bool:
        return ((active is None or promo["active"] == active)
                and (coupon is None or promo["promotion"]["coupon"] == coupon)
                and (customer is None or promo["customer"] == customer))

    collection = (sb.store.collection("promotion_code", "code", code) if code
                  else sb.store.collection("promotion_code"))
    return paginate(sb.store, collection, p, "/v1/promotion_codes", where)
