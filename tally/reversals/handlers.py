"""Webhook handlers for refunds and disputes. Each names the Stripe object; the services re-fetch it and act on
its current state under the lock of the payment it reverses, so duplicates and any order are safe.
``ctx.session`` is the transaction that also marks the event processed: never commit here."""

from __future__ import annotations

from typing import Any

from ..orders.refunds import on_charge_refunded
from ..webhooks.dispatch import HandlerContext, handles
from . import disputes
from .payments import recorded_invoice, retrieve_charge
from .refunds import apply_invoice_refunds, list_refunds


@handles("charge.refunded")
async def charge_refunded(ctx: HandlerContext, event: dict[str, Any]) -> None:
    """A refund of a subscription invoice takes back its share of the invoice's credits; of a pack, the
    pack's (``tally.orders.refunds.on_charge_refunded``)."""
    charge_id = str(event["data"]["object"]["id"])
    charge = await retrieve_charge(ctx.stripe, charge_id)
    invoice = await recorded_invoice(ctx.session, ctx.stripe, charge)
    if invoice is not None:
        await apply_invoice_refunds(ctx.session, invoice, await list_refunds(ctx.stripe, charge_id))
        return
    await on_charge_refunded(ctx.session, ctx.stripe, settings=ctx.settings, charge_id=charge_id)


@handles("charge.dispute.created", "charge.dispute.updated", "charge.dispute.funds_withdrawn",
         "charge.dispute.funds_reinstated", "charge.dispute.closed")
async def dispute_changed(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await disputes.on_dispute(ctx.session, ctx.stripe, settings=ctx.settings,
                              dispute_id=str(event["data"]["object"]["id"]))
