"""Invoice previews (``POST /v1/invoices/create_preview`` and ``invoice.upcoming``): the invoice a
subscription will produce, computed without storing or redeeming anything.

The preview follows the subscription's schedule through the code the schedule itself runs (``schedules``): a
phase that starts mid-period is previewed as the change it will make then (its prorations, and an invoice at
once for ``always_invoice`` or a new interval); a phase that starts at the period end is put in place before
the renewal is billed, so the renewal bills its prices and quantities for its first period. A subscription
that ends by its period end (``cancel_at_period_end``, a ``cancel_at``, a schedule ending with ``cancel``)
has no next invoice."""

from __future__ import annotations

from typing import Any

from ..events import emit
from ..ids import new_id
from ..store import Obj
from . import changes as ch, invoicing, schedules as sched, subscriptions as subs, timeline


def _as_preview(invoice: Obj) -> Obj:
    invoice["id"] = new_id("upcoming_in", 24)
    for item in invoice["lines"]["data"]:
        item["id"] = "il_tmp_" + item["id"][3:]
        item["invoice"] = invoice["id"]
    invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
    invoice["automatically_finalizes_at"] = None
    return invoice


def _bills_at_once(result: ch.Plan, behavior: str) -> bool:
    return behavior == "always_invoice" or result.new_cycle


def preview_next(sb: Any, sub: Obj) -> Obj | None:
    """The subscription's next invoice as things stand, its schedule included; None when none is coming."""
    ends = subs.ends_before_renewal(sub)
    phase = sched.phase_due_within_period(sb, sub)
    if phase is not None:
        t, behavior = phase["start_date"], phase["proration_behavior"]
        result = ch.plan(sb, sub, sched.item_changes(sb, sub, phase), t, behavior)
        # Prorations left pending on a subscription that then ends are never invoiced.
        return preview_change(sb, sub, result, t, behavior) if not ends or _bills_at_once(result, behavior) \
            else None
    return None if ends else preview_renewal(sb, sub)


def _renewal_invoice(sb: Any, shadow: Obj) -> Obj:
    """The draft the renewal at the period end makes of ``shadow`` (a copy of the subscription), once the
    phase its schedule enters then is in place."""
    old_period = subs.period(shadow)
    boundary = old_period[1]
    sched.foresee_renewal(sb, shadow, boundary)
    invoice = subs.period_invoice(sb, shadow, billing_reason="upcoming", span=subs.next_period(shadow, boundary),
                                  invoice_period=old_period, dry_run=True)
    invoice["created"] = boundary
    return invoice


def preview_renewal(sb: Any, sub: Obj) -> Obj:
    """The invoice of the next renewal, as things stand."""
    invoice = _renewal_invoice(sb, subs.snapshot(sub))
    invoicing.refresh_totals(sb, invoice)
    return _as_preview(invoice)


def preview_change(sb: Any, sub: Obj, result: ch.Plan, t: int, behavior: str) -> Obj:
    """The invoice a change would produce: at once for ``always_invoice`` or a new interval (the
    prorations, plus the new period for a new interval), else at the next renewal with the prorations."""
    proration_lines = [
        invoicing.line(None, amount=p["amount"], currency=sub["currency"], description=p["description"],
                       period=p["period"], quantity=p["quantity"], price=p["price"], subscription=sub["id"],
                       invoice_item="ii_preview", proration=True, discountable=False)
        for p in result.prorations]
    # Apply the change to a copy of the subscription to see the new items and period.
    shadow = subs.snapshot(sub)
    changes = [ch.ItemChange(next((i for i in subs.items(shadow) if c.item and i["id"] == c.item["id"]), None),
                             c.price, c.quantity, c.metadata) for c in result.changes]
    ch.apply(sb, shadow, ch.Plan(changes, [], result.new_cycle), t, persist=False)
    if _bills_at_once(result, behavior):
        invoice = subs.period_invoice(sb, shadow, billing_reason="subscription_update", span=subs.period(shadow),
                                      invoice_period=(t, t), with_items=result.new_cycle, dry_run=True)
    else:
        invoice = _renewal_invoice(sb, shadow)
    invoice["lines"]["data"].extend(proration_lines)
    invoice["parent"]["subscription_details"]["subscription_proration_date"] = t
    invoicing.refresh_totals(sb, invoice)
    return _as_preview(invoice)


@timeline.timer("sub.upcoming")
def upcoming(sb: Any, sub_id: str, boundary: int) -> None:
    sub = subs.live(sb, sub_id)
    if sub is None or sub["status"] not in ("active", "past_due") or subs.period(sub)[1] != boundary:
        return
    invoice = preview_next(sb, sub)
    if invoice is not None:
        emit(sb, "invoice.upcoming", invoice)
