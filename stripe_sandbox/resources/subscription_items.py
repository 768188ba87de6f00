"""Subscription items: create, retrieve, update, delete, list (by ``subscription``); each change goes
through the same proration rules as a subscription update."""

from __future__ import annotations

from typing import Any

from ..billing import changes as ch, subscriptions as subs
from ..billing.invoice_items import new_invoice_item
from ..billing.subscription_params import PRORATION
from ..billing.subscription_updates import charge_now
from ..billing.time import now_for
from ..errors import invalid_request, no_such
from ..listing import LIST_PARAMS, paginate
from ..params import Params
from ..routing import route
from ..store import Obj
from .subscriptions import get_subscription

ITEM_PARAMS = ("price", "quantity", "metadata", "proration_behavior", "proration_date", "payment_behavior",
               "tax_rates", "discounts", "billing_thresholds", "off_session", "plan", "price_data")


def get_item(sb: Any, item_id: str) -> Obj:
    item = sb.store.get(item_id, "subscription_item")
    if item is None:
        raise no_such("subscription_item", item_id, "id")
    return item


def _change(sb: Any, sub: Obj, p: Params, entry: dict[str, Any]) -> None:
    if sub["status"] in subs.TERMINAL:
        raise invalid_request("A canceled subscription cannot change its items.", param="subscription")
    behavior = p.str("proration_behavior", "create_prorations", choices=PRORATION) or "create_prorations"
    now = now_for(sb, sub)
    t = p.int("proration_date") or now
    before = subs.snapshot(sub)
    result = ch.plan(sb, sub, ch.parse_items(sb, sub, [Params(entry, "items[0]")]), t, behavior)
    ch.apply(sb, sub, result, t)
    customer = sb.store.objects[sub["customer"]]
    for line in result.prorations:
        new_invoice_item(sb, customer, amount=line["amount"], currency=sub["currency"],
                         description=line["description"], period=line["period"], quantity=line["quantity"],
                         price=line["price"], subscription=sub["id"], proration=True)
    immediate = None
    if result.new_cycle or (behavior == "always_invoice" and result.prorations):
        immediate = subs.period_invoice(sb, sub, billing_reason="subscription_update", span=subs.period(sub),
                                        invoice_period=(t, t), with_items=result.new_cycle)
        sub["latest_invoice"] = immediate["id"]
    subs.emit_updated(sb, sub, before)
    if immediate is not None:
        charge_now(sb, sub, immediate)
    subs.schedule(sb, sub)


@route("POST", "/v1/subscription_items", params=("subscription", *ITEM_PARAMS))
def create(sb: Any, p: Params) -> Obj:
    sub = get_subscription(sb, p.str("subscription", required=True) or "", "subscription")
    known = {i["id"] for i in subs.items(sub)}
    entry = {k: v for k, v in p.data.items() if k in ("price", "quantity", "metadata", "plan")}
    _change(sb, sub, p, entry)
    return next(i for i in subs.items(sub) if i["id"] not in known)


@route("GET", "/v1/subscription_items/{item_id}")
def retrieve(sb: Any, p: Params, item_id: str) -> Obj:
    return get_item(sb, item_id)


@route("POST", "/v1/subscription_items/{item_id}", params=ITEM_PARAMS)
def update(sb: Any, p: Params, item_id: str) -> Obj:
    item = get_item(sb, item_id)
    sub = get_subscription(sb, item["subscription"], "subscription")
    entry = {"id": item_id, **{k: v for k, v in p.data.items() if k in ("price", "quantity", "metadata", "plan")}}
    _change(sb, sub, p, entry)
    return item


@route("DELETE", "/v1/subscription_items/{item_id}", params=(
    "proration_behavior", "proration_date", "clear_usage", "payment_behavior"))
def delete(sb: Any, p: Params, item_id: str) -> Obj:
    item = get_item(sb, item_id)
    sub = get_subscription(sb, item["subscription"], "subscription")
    _change(sb, sub, p, {"id": item_id, "deleted": "true"})
    return {"id": item_id, "object": "subscription_item", "deleted": True}


@route("GET", "/v1/subscription_items", params=(*LIST_PARAMS, "subscription"))
def list_(sb: Any, p: Params) -> Obj:
    sub_id = p.str("subscription", required=True) or ""
    get_subscription(sb, sub_id, "subscription")
    return paginate(sb.store, sb.store.collection("subscription_item", "subscription", sub_id), p,
                    f"/v1/subscription_items?subscription={sub_id}")
