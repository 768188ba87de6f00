"""What happens as time passes: renewals, trial ends, reminders, finalization, retries and giving up.

Every function here is a timer (see ``timeline``): it checks that the state it was set for still holds, then
acts and sets the timers of the new state. Retries follow ``SandboxConfig.subscription_retry_days``; when they
are spent the subscription is canceled, or goes ``unpaid`` when the environment variable
``STRIPE_SANDBOX_DUNNING_FINAL_STATUS=unpaid`` is set (Stripe's "if all retries fail" setting).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..events import emit
from ..store import Obj
from . import invoicing, subscriptions as subs, timeline
from .timeline import timer
from .time import now_for


# Called with (sandbox, subscription, boundary) as a period ends, before the next one is invoiced: a
# subscription schedule puts the phase that starts at the boundary in place here.
RENEWING: list[Callable[[Any, Obj, int], None]] = []


def has_payment_method(sb: Any, sub: Obj) -> bool:
    if sub.get("default_payment_method"):
        return True
    customer = sb.store.get(sub["customer"], "customer") or {}
    return bool((customer.get("invoice_settings") or {}).get("default_payment_method"))


@timer("sub.renew")
def renew(sb: Any, sub_id: str, boundary: int) -> None:
    sub = subs.live(sb, sub_id)
    if sub is None or sub["status"] in ("incomplete", "paused") or subs.period(sub)[1] != boundary:
        return
    if subs.ends_before_renewal(sub):
        subs.end(sb, sub, when=boundary, reason=sub["cancellation_details"]["reason"] or "cancellation_requested")
        return
    before = subs.snapshot(sub)
    if sub["status"] == "trialing" and not _end_trial(sb, sub, before, boundary):
        return
    old_span = subs.period(sub)
    for hook in RENEWING:
        hook(sb, sub, boundary)
    span = subs.next_period(sub, boundary)
    for item in subs.items(sub):
        item["current_period_start"], item["current_period_end"] = span
        sb.store.save(item)
    invoice = _renewal_invoice(sb, sub, span, old_span)
    sub["latest_invoice"] = invoice["id"]
    subs.emit_updated(sb, sub, before)
    invoicing.save_new(sb, invoice)
    if invoice["auto_advance"]:
        timeline_at_invoice(sb, invoice, invoice["automatically_finalizes_at"], "invoice.finalize", invoice["id"])
    subs.schedule(sb, sub)


def _end_trial(sb: Any, sub: Obj, before: Obj, boundary: int) -> bool:
    """The trial ends: the subscription goes ``active`` (True), or without a payment method is paused or
    canceled as its ``trial_settings`` say (False: no renewal then)."""
    behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
    if not has_payment_method(sb, sub) and behavior == "pause":
        sub["status"] = "paused"
        subs.emit_updated(sb, sub, before)
        emit(sb, "customer.subscription.paused", sub)
        return False
    if not has_payment_method(sb, sub) and behavior == "cancel":
        subs.end(sb, sub, when=boundary, reason="cancellation_requested")
        return False
    sub["status"] = "active"
    return True


def _renewal_invoice(sb: Any, sub: Obj, span: tuple[int, int], old_span: tuple[int, int]) -> Obj:
    """The draft for the period that starts (billing the one that ended); spent discounts leave the
    subscription, and an ``unpaid`` or ``keep_as_draft`` subscription's draft is not advanced."""
    invoice = subs.period_invoice(sb, sub, billing_reason="subscription_cycle", span=span,
                                  invoice_period=old_span)
    # A ``once`` coupon has served; a ``repeating`` one ends with its months.
    sub["discounts"] = [d for d in sub["discounts"] if not sb.store.kv.get(f"discount_used:{d}")
                        and invoicing.active_discounts(sb, [d], span[0])]
    if sub["status"] == "unpaid" or (sub.get("pause_collection") or {}).get("behavior") == "keep_as_draft":
        invoice["auto_advance"] = False  # Stripe leaves these drafts alone
        invoice["automatically_finalizes_at"] = None
    return invoice


def timeline_at_invoice(sb: Any, invoice: Obj, when: int, name: str, *args: Any) -> None:
    timeline.at(sb, invoice.get("test_clock"), when, name, *args)


@timer("invoice.finalize")
def finalize_and_collect(sb: Any, invoice_id: str) -> None:
    invoice = invoicing.get(sb, invoice_id)
    if invoice is None or invoice["status"] != "draft" or not invoice["auto_advance"]:
        return
    invoicing.finalize(sb, invoice)
    collect(sb, invoice)


def collect(sb: Any, invoice: Obj) -> None:
    """After finalization: pause behaviour, else charge automatically (send_invoice waits for the payer)."""
    if invoice["status"] != "open":
        return
    sub = sb.store.get(invoicing.subscription_of(invoice) or "", "subscription")
    pause = (sub or {}).get("pause_collection") or {}
    if pause.get("behavior") == "mark_uncollectible":
        invoicing.mark_uncollectible(sb, invoice)
    elif pause.get("behavior") == "void":
        invoicing.void(sb, invoice)
    elif invoice["collection_method"] == "charge_automatically":
        invoicing.attempt_payment(sb, invoice)


@timer("invoice.retry")
def retry(sb: Any, invoice_id: str, when: int) -> None:
    invoice = invoicing.get(sb, invoice_id)
    if invoice is None or invoice["status"] != "open" or invoice["next_payment_attempt"] != when:
        return
    invoicing.attempt_payment(sb, invoice)


def _payment_failed(sb: Any, invoice: Obj) -> None:
    sub = subs.live(sb, invoicing.subscription_of(invoice) or "")
    if sub is None or invoice["billing_reason"] == "subscription_create":
        return  # a first payment that fails leaves the subscription ``incomplete``
    if invoice["next_payment_attempt"] is not None:
        timeline_at_invoice(sb, invoice, invoice["next_payment_attempt"], "invoice.retry", invoice["id"],
                            invoice["next_payment_attempt"])
        if sub["status"] in ("active", "trialing"):
            before = subs.snapshot(sub)
            sub["status"] = "past_due"
            subs.emit_updated(sb, sub, before)
        return
    # Retries are spent: Stripe's final action.
    if os.environ.get("STRIPE_SANDBOX_DUNNING_FINAL_STATUS") == "unpaid":
        before = subs.snapshot(sub)
        sub["status"] = "unpaid"
        subs.emit_updated(sb, sub, before)
    else:
        subs.end(sb, sub, when=now_for(sb, sub), reason="payment_failed")


def _paid(sb: Any, invoice: Obj) -> None:
    sub = subs.live(sb, invoicing.subscription_of(invoice) or "")
    if sub is None or sub["latest_invoice"] != invoice["id"]:
        return
    if sub["status"] in ("incomplete", "past_due", "unpaid"):
        before = subs.snapshot(sub)
        was_incomplete = sub["status"] == "incomplete"
        sub["status"] = "trialing" if sub["trial_end"] and sub["trial_end"] > now_for(sb, sub) else "active"
        subs.emit_updated(sb, sub, before)
        if was_incomplete:
            subs.schedule(sb, sub)


invoicing.FAILED.append(_payment_failed)
invoicing.PAID.append(_paid)


@timer("sub.expire_incomplete")
def expire_incomplete(sb: Any, sub_id: str) -> None:
    sub = subs.live(sb, sub_id)
    if sub is None or sub["status"] != "incomplete":
        return
    invoice = invoicing.get(sb, sub["latest_invoice"] or "")
    if invoice is not None and invoice["status"] == "open":
        invoicing.void(sb, invoice)
    sub["status"] = "incomplete_expired"
    sub["ended_at"] = now_for(sb, sub)
    sb.store.save(sub)
    emit(sb, "customer.subscription.deleted", sub)


@timer("sub.trial_will_end")
def trial_will_end(sb: Any, sub_id: str, trial_end: int) -> None:
    sub = subs.live(sb, sub_id)
    if sub is None or sub["status"] != "trialing" or sub["trial_end"] != trial_end:
        return
    emit(sb, "customer.subscription.trial_will_end", sub)


@timer("sub.cancel_at")
def cancel_at(sb: Any, sub_id: str, when: int) -> None:
    sub = subs.live(sb, sub_id)
    if sub is None or sub["cancel_at"] != when:
        return
    subs.end(sb, sub, when=when, reason=sub["cancellation_details"]["reason"] or "cancellation_requested")


@timer("sub.resume_collection")
def resume_collection(sb: Any, sub_id: str, when: int) -> None:
    sub = subs.live(sb, sub_id)
    if sub is None or (sub.get("pause_collection") or {}).get("resumes_at") != when:
        return
    before = subs.snapshot(sub)
    sub["pause_collection"] = None
    subs.emit_updated(sb, sub, before)
