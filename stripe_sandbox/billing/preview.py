"""Invoice previews (``POST /v1/invoices/create_preview`` and ``invoice.upcoming``): the invoice a
subscription will produce, computed without storing or redeeming anything."""

from __future__ import annotations

from typing import Any

from ..ids import new_id
from ..store import Obj
from . import changes as ch, invoicing, subscriptions as subs


def _as_preview(invoice: Obj) -> Obj:
    invoice["id"] = new_id("upcoming_in", 24)
    for item in invoice["lines"]["data"]:
        item["id"] = "il_tmp_" + item["id"][3:]
        item["invoice"] = invoice["id"]
    invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
    invoice["automatically_finalizes_at"] = None
    return invoice


def preview_renewal(sb: Any, sub: Obj) -> Obj:
    """The invoice of the next renewal, as things stand."""
    boundary = subs.period(sub)[1]
    span = subs.next_period(sub, boundary)
    invoice = subs.period_invoice(sb, sub, billing_reason="upcoming", span=span,
                                  invoice_period=subs.period(sub), dry_run=True)
    invoice["created"] = boundary
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
    immediate = behavior == "always_invoice" or result.new_cycle
    if immediate:
        invoice = subs.period_invoice(sb, shadow, billing_reason="subscription_update", span=subs.period(shadow),
                                      invoice_period=(t, t), with_items=result.new_cycle, dry_run=True)
    else:
        boundary = subs.period(shadow)[1]
        invoice = subs.period_invoice(sb, shadow, billing_reason="upcoming", span=subs.next_period(shadow, boundary),
                                      invoice_period=subs.period(shadow), dry_run=True)
        invoice["created"] = boundary
    invoice["lines"]["data"].extend(proration_lines)
    invoice["parent"]["subscription_details"]["subscription_proration_date"] = t
    invoicing.refresh_totals(sb, invoice)
    return _as_preview(invoice)
