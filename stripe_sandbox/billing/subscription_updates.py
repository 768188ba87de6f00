"""Changing a subscription: ``POST /v1/subscriptions/{id}``, and a schedule entering a phase mid-period through
the same code (same prorations, same events).

Each parameter is read and applied in the order the API has always done it, so that a request refused half-way
refuses with the same error. The parameters are checked in ``subscription_params``; the billing rules
(prorations, periods, invoices) are ``changes``, ``subscriptions`` and ``invoicing``."""

from __future__ import annotations

from typing import Any

from ..params import Params, merge_metadata
from ..store import Obj
from . import changes as ch, invoice_tax, invoicing, renewal, subscriptions as subs
from .discounts import create_discount, discount_created_event, resolve_discounts
from .invoice_items import new_invoice_item
from .subscription_params import (PRORATION, cancellation_feedback, check_updatable, pause_collection,
                                  payment_method, refuse_unsupported, timestamp_or_now, trial_settings)
from .time import now_for

UPDATE_UNSUPPORTED = ("billing_cycle_anchor", "add_invoice_items", "on_behalf_of")


def apply_discounts(sb: Any, p: Params, sub: Obj, customer: Obj, now: int) -> list[str]:
    """``discounts``: checked, then made into discount objects of the subscription; their ids."""
    # Coupons and promotion codes are not bound to the customer's test clock: they expire on sandbox time.
    redemptions = resolve_discounts(sb, p.dict_list("discounts"), customer=customer, currency=sub["currency"])
    ids = []
    for redemption in redemptions:
        discount = create_discount(sb, redemption, customer=customer["id"], start=now, subscription=sub["id"])
        discount_created_event(sb, discount)
        ids.append(discount["id"])
    return ids


def charge_now(sb: Any, sub: Obj, invoice: Obj) -> None:
    """Store, finalize and collect an invoice made by a request (not by time)."""
    invoicing.save_new(sb, invoice)
    invoicing.finalize(sb, invoice)
    renewal.collect(sb, invoice)


def update_subscription(sb: Any, p: Params, sub: Obj) -> Obj:
    refuse_unsupported(p, UPDATE_UNSUPPORTED)
    customer = sb.store.objects[sub["customer"]]
    check_updatable(sub, p)
    now = now_for(sb, sub)
    before = subs.snapshot(sub)
    behavior = p.str("proration_behavior", "create_prorations", choices=PRORATION) or "create_prorations"
    _set_details(sb, p, sub, customer)
    _set_cancellation(p, sub, now)
    _set_collection(p, sub)
    if "discounts" in p:
        sub["discounts"] = apply_discounts(sb, p, sub, customer, now)
    immediate: Obj | None = None
    if "items" in p:
        immediate = _change_items(sb, p, sub, customer, now, behavior)
    if "trial_end" in p:
        immediate = _change_trial_end(sb, p, sub, now) or immediate
    if immediate is not None:
        sub["latest_invoice"] = immediate["id"]
    subs.emit_updated(sb, sub, before)
    if immediate is not None:
        charge_now(sb, sub, immediate)
    subs.schedule(sb, sub)
    return sub


def _set_details(sb: Any, p: Params, sub: Obj, customer: Obj) -> None:
    if "metadata" in p:
        sub["metadata"] = merge_metadata(sub["metadata"], p.raw("metadata"))
    if "description" in p:
        sub["description"] = p.optional_str("description")
    if "default_payment_method" in p:
        sub["default_payment_method"] = payment_method(sb, p, customer)
    tax = invoice_tax.requested(sb, p, customer)
    if tax is not None:
        sub["automatic_tax"] = tax


def _set_cancellation(p: Params, sub: Obj, now: int) -> None:
    if "cancellation_details" in p:
        feedback = cancellation_feedback(p)
        if feedback is not None:
            sub["cancellation_details"]["comment"], sub["cancellation_details"]["feedback"] = feedback
    if "cancel_at_period_end" in p:
        sub["cancel_at_period_end"] = bool(p.bool("cancel_at_period_end", False))
        sub["canceled_at"] = now if sub["cancel_at_period_end"] else None
        sub["cancellation_details"]["reason"] = "cancellation_requested" if sub["cancel_at_period_end"] else None
    if "cancel_at" in p:
        sub["cancel_at"] = timestamp_or_now(p, "cancel_at", now)


def _set_collection(p: Params, sub: Obj) -> None:
    if "pause_collection" in p:
        sub["pause_collection"] = pause_collection(p)
    if "trial_settings" in p:
        sub["trial_settings"] = trial_settings(p)
    if "collection_method" in p:
        sub["collection_method"] = p.str("collection_method", choices=("charge_automatically", "send_invoice"))
    if "days_until_due" in p:
        sub["days_until_due"] = p.int("days_until_due", minimum=0)


def _change_items(sb: Any, p: Params, sub: Obj, customer: Obj, now: int, behavior: str) -> Obj | None:
    """New items or quantities at ``proration_date`` (or now), prorated by ``behavior``; the invoice to charge
    at once, if the change makes one (a new interval, or ``always_invoice`` with prorations)."""
    t = p.int("proration_date") or now
    result = ch.plan(sb, sub, ch.parse_items(sb, sub, p.dict_list("items")), t, behavior)
    ch.apply(sb, sub, result, t)
    for line in result.prorations:
        new_invoice_item(sb, customer, amount=line["amount"], currency=sub["currency"],
                         description=line["description"], period=line["period"], quantity=line["quantity"],
                         price=line["price"], subscription=sub["id"], proration=True,
                         unit_amount_decimal=str(line["amount"] // max(line["quantity"], 1)))
    if result.new_cycle or (behavior == "always_invoice" and result.prorations):
        return subs.period_invoice(sb, sub, billing_reason="subscription_update", span=subs.period(sub),
                                   invoice_period=(t, t), with_items=result.new_cycle)
    return None


def _change_trial_end(sb: Any, p: Params, sub: Obj, now: int) -> Obj | None:
    """``trial_end``: ``now`` ends the trial and starts the first period (its invoice is returned, to charge at
    once); a later time moves the trial's end."""
    trial_end = timestamp_or_now(p, "trial_end", now)
    if trial_end is not None and trial_end <= now:
        interval, count = subs.recurring(sub)
        span = subs.first_period(now, interval, count)
        sub.update(trial_end=now, billing_cycle_anchor=now, status="active")
        for item in subs.items(sub):
            item["current_period_start"], item["current_period_end"] = span
            sb.store.save(item)
        return subs.period_invoice(sb, sub, billing_reason="subscription_update", span=span,
                                   invoice_period=(now, now))
    if trial_end is not None:
        sub.update(trial_end=trial_end, billing_cycle_anchor=trial_end, status="trialing",
                   trial_start=sub["trial_start"] or now)
        for item in subs.items(sub):
            item["current_period_end"] = trial_end
            sb.store.save(item)
    return None
