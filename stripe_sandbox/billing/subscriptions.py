"""Subscriptions and their items: the objects, their billing period, invoices for a period, cancellation.

A subscription embeds its items (``items.data``); the embedded dicts are the very objects stored as
``subscription_item``, so a change to an item shows in both. (After a restart they are linked again.)
Since API version basil the billing period lives on each item (``current_period_start/end``); all items of
a subscription share one interval, so they share one period.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import invalid_request
from ..events import changed, emit
from ..ids import new_id
from ..routing import on_start
from ..store import Obj
from . import invoicing, timeline
from .invoice_items import pending_lines, take_pending
from .time import DAY, add_interval, interval_seconds, now_for, period_containing

TERMINAL = ("canceled", "incomplete_expired")
INCOMPLETE_EXPIRES_AFTER = 23 * 3600
TRIAL_WILL_END_BEFORE = 3 * DAY
UPCOMING_BEFORE = 3 * DAY  # Stripe's default "upcoming renewal" reminder lead
# Called with (sandbox, subscription) once a subscription has ended (its schedule ends with it).
ENDED: list[Callable[[Any, Obj], None]] = []


def snapshot(obj: Obj) -> Obj:
    """A deep copy, for ``previous_attributes`` of nested changes (items, periods)."""
    return orjson.loads(orjson.dumps(obj))


def live(sb: Any, sub_id: str) -> Obj | None:
    """The subscription, unless it is gone or has ended (what a timer set for it checks first)."""
    sub = sb.store.get(sub_id, "subscription")
    if sub is None or sub["status"] in TERMINAL:
        return None
    return sub


def emit_updated(sb: Any, sub: Obj, before: Obj) -> None:
    """Save the subscription; ``customer.subscription.updated`` when it differs from ``before``."""
    sb.store.save(sub)
    previous = changed(sub, before)
    if previous:
        emit(sb, "customer.subscription.updated", sub, previous)


def items(sub: Obj) -> list[Obj]:
    return sub["items"]["data"]


def period(sub: Obj) -> tuple[int, int]:
    first = items(sub)[0]
    return first["current_period_start"], first["current_period_end"]


def ends_before_renewal(sub: Obj) -> bool:
    """Whether the subscription is set to end by its period end: then no renewal (and no invoice) comes."""
    end = period(sub)[1]
    return bool(sub["cancel_at_period_end"]) or (sub["cancel_at"] is not None and sub["cancel_at"] <= end)


def recurring(sub: Obj) -> tuple[str, int]:
    rec = items(sub)[0]["price"]["recurring"]
    return rec["interval"], rec["interval_count"]


def plan_of(price: Obj) -> Obj:
    """The legacy ``plan`` view of a recurring price, as Stripe still shows on items."""
    rec = price["recurring"]
    return {
        "id": price["id"], "object": "plan", "active": price["active"], "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"], "billing_scheme": price["billing_scheme"],
        "created": price["created"], "currency": price["currency"], "interval": rec["interval"],
        "interval_count": rec["interval_count"], "livemode": False, "metadata": dict(price["metadata"]),
        "meter": rec.get("meter"), "nickname": price["nickname"], "product": price["product"],
        "tiers_mode": price["tiers_mode"], "transform_usage": None,
        "trial_period_days": rec.get("trial_period_days"), "usage_type": rec.get("usage_type", "licensed"),
    }


def check_price(price: Obj, param: str) -> None:
    if price["type"] != "recurring":
        raise invalid_request(
            "The price specified is set to `type=one_time` but this field only accepts prices with "
            "`type=recurring`.", param=param)
    if not price["active"]:
        raise invalid_request("The price specified is inactive. This field only accepts active prices.",
                              param=param)
    if price["recurring"].get("usage_type") == "metered":
        raise invalid_request("Metered prices are not supported by the sandbox yet.", param=param)


def new_item(sb: Any, sub: Obj, price: Obj, quantity: int, metadata: dict[str, str], created: int,
             span: tuple[int, int]) -> Obj:
    item: Obj = {
        "id": new_id("si", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": span[1],
        "current_period_start": span[0],
        "current_trial": None,
        "discounts": [],
        "metadata": metadata,
        "plan": plan_of(price),
        "price": copy.deepcopy(price),
        "quantity": quantity,
        "subscription": sub["id"],
        "tax_rates": [],
    }
    return item


def check_intervals(prices: list[Obj], param: str = "items") -> None:
    keys = {(p["recurring"]["interval"], p["recurring"]["interval_count"], p["currency"]) for p in prices}
    if len(keys) > 1:
        raise invalid_request("Currency and interval fields must match across all plans on this subscription. "
                              "Found mismatch in interval field.", param=param)


def shortest_interval(sb: Any, clock_id: str) -> int | None:
    """Seconds in the shortest billing interval among a clock's live subscriptions."""
    best = None
    for sub_id in sb.store.collection("subscription", "test_clock", clock_id).ids:
        sub = sb.store.objects[sub_id]
        if sub["status"] in TERMINAL or not items(sub):
            continue
        seconds = interval_seconds(*recurring(sub))
        best = seconds if best is None else min(best, seconds)
    return best


def clock_id(sub: Obj) -> str | None:
    return sub.get("test_clock")


def at(sb: Any, sub: Obj, when: int, name: str, *args: Any) -> None:
    timeline.at_once(sb, clock_id(sub), when, name, *args)


def schedule(sb: Any, sub: Obj) -> None:
    """Set the timers for what the subscription's current state will do next (see ``renewal``)."""
    if sub["status"] in TERMINAL or not items(sub):
        return
    now = now_for(sb, sub)
    start, end = period(sub)
    if sub["status"] == "incomplete":
        at(sb, sub, sub["created"] + INCOMPLETE_EXPIRES_AFTER, "sub.expire_incomplete", sub["id"])
        return
    if sub["status"] == "paused":
        return
    at(sb, sub, end, "sub.renew", sub["id"], end)
    if sub["cancel_at"] is not None and sub["cancel_at"] < end:
        at(sb, sub, sub["cancel_at"], "sub.cancel_at", sub["id"], sub["cancel_at"])
    _set_reminder(sb, sub, now, (start, end))
    pause = sub.get("pause_collection") or {}
    if pause.get("resumes_at"):
        at(sb, sub, pause["resumes_at"], "sub.resume_collection", sub["id"], pause["resumes_at"])


def _set_reminder(sb: Any, sub: Obj, now: int, span: tuple[int, int]) -> None:
    """``trial_will_end`` before a trial ends, else ``invoice.upcoming`` before a renewal (when either is still
    ahead in this period)."""
    start, end = span
    if sub["status"] == "trialing" and sub["trial_end"] is not None:
        warn = sub["trial_end"] - TRIAL_WILL_END_BEFORE
        if warn > now and warn > start:
            at(sb, sub, warn, "sub.trial_will_end", sub["id"], sub["trial_end"])
    elif not sub["cancel_at_period_end"] and end - UPCOMING_BEFORE > max(now, start):
        at(sb, sub, end - UPCOMING_BEFORE, "sub.upcoming", sub["id"], end)


def next_period(sub: Obj, boundary: int) -> tuple[int, int]:
    interval, count = recurring(sub)
    return boundary, period_containing(sub["billing_cycle_anchor"], interval, count, boundary)[1]


def first_period(anchor: int, interval: str, count: int) -> tuple[int, int]:
    return anchor, add_interval(anchor, interval, count)


def period_invoice(sb: Any, sub: Obj, *, billing_reason: str, span: tuple[int, int],
                   invoice_period: tuple[int, int], include_pending: bool = True,
                   with_items: bool = True, dry_run: bool = False) -> Obj:
    """A draft invoice for a subscription's period: one line per item (``with_items``) plus the pending
    invoice items (prorations, one-off charges) for this subscription or the customer at large."""
    customer = sb.store.objects[sub["customer"]]
    discounts = [d for d in sub["discounts"] if not sb.store.kv.get(f"discount_used:{d}")]
    invoice = invoicing.new_invoice(
        sb, customer, currency=sub["currency"], billing_reason=billing_reason, subscription=sub,
        collection_method=sub["collection_method"], days_until_due=sub["days_until_due"],
        default_payment_method=None, discounts=discounts, period=invoice_period,
        automatic_tax=sub.get("automatic_tax"))
    lines = invoice["lines"]["data"]
    if with_items:
        lines.extend(_item_lines(sb, sub, invoice["id"], billing_reason, span))
    if include_pending:
        if dry_run:
            lines.extend(pending_lines(sb, invoice, customer["id"], sub["id"]))
        else:
            lines.extend(take_pending(sb, invoice, customer["id"], sub["id"]))
    if dry_run:
        return invoice
    _spend_once_coupons(sb, discounts, lines)
    return invoice


def _item_lines(sb: Any, sub: Obj, invoice_id: str, billing_reason: str, span: tuple[int, int]) -> list[Obj]:
    """One line per item for ``span``; nothing to pay for the trial a new subscription starts with."""
    out = []
    for item in items(sub):
        price = item["price"]
        amount = int(price["unit_amount"] or 0) * item["quantity"]
        description = invoicing.item_description(sb, price, item["quantity"])
        if sub["status"] == "trialing" and billing_reason == "subscription_create":
            amount = 0
            product = sb.store.get(price["product"]) or {}
            description = f"Trial period for {product.get('name', price['product'])}"
        out.append(invoicing.line(invoice_id, amount=amount, currency=sub["currency"],
                                  description=description, period=span, quantity=item["quantity"],
                                  price=price, subscription=sub["id"], subscription_item=item["id"]))
    return out


def _spend_once_coupons(sb: Any, discount_ids: list[str], lines: list[Obj]) -> None:
    """A ``once`` coupon serves one invoice: the first that charges something."""
    for discount_id in discount_ids:
        discount = sb.store.get(discount_id, "discount")
        coupon = sb.store.objects[discount["source"]["coupon"]] if discount else None
        if coupon is not None and coupon["duration"] == "once" and any(i["amount"] > 0 for i in lines):
            sb.store.set_kv(f"discount_used:{discount_id}", True)


def end(sb: Any, sub: Obj, *, when: int, reason: str | None = None, comment: str | None = None,
        feedback: str | None = None) -> None:
    """The subscription ends now: ``canceled``, ``customer.subscription.deleted``."""
    if sub["status"] in TERMINAL:
        return
    now = now_for(sb, sub)
    sub["status"] = "canceled"
    sub["canceled_at"] = sub["canceled_at"] or now
    sub["ended_at"] = when
    if reason or comment or feedback:
        sub["cancellation_details"] = {**sub["cancellation_details"], "comment": comment, "feedback": feedback,
                                       "reason": reason or sub["cancellation_details"]["reason"]}
    sb.store.save(sub)
    emit(sb, "customer.subscription.deleted", sub)
    for hook in ENDED:
        hook(sb, sub)


def relink(sb: Any) -> None:
    """After a restart, make the embedded items the stored item objects again."""
    for sub_id in sb.store.collection("subscription").ids:
        sub = sb.store.objects[sub_id]
        sub["items"]["data"] = [sb.store.objects.get(i["id"], i) for i in items(sub)]


on_start(relink)
