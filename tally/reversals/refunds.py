"""Refunds of subscription invoices: the refunded share of the invoice's credits is taken back, once per Stripe
refund (reference ``refund:{re_…}``), with the same cumulative rule as packs (``tally.orders.refunds``):
refund k takes ``floor(credits × refunded_through_k / amount_paid)`` minus what earlier refunds took, so
partial refunds add up to exactly the whole grant on a full refund."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..ledger import credits, references
from ..stripe_gateway import StripeGateway, stripe_call
from ..subscriptions.models import SubscriptionInvoice


async def list_refunds(client: StripeGateway, charge_id: str) -> list[dict[str, Any]]:
    """The charge's refunds, oldest first."""
    async with stripe_call("listing refunds"):
        listed = await client.list_refunds(charge_id)
    return sorted(listed, key=lambda r: (r.get("created") or 0, r["id"]))


async def apply_invoice_refunds(session: AsyncSession, invoice: SubscriptionInvoice,
                                refunds: list[dict[str, Any]]) -> SubscriptionInvoice:
    """Record each succeeded (or pending) refund once, in creation order; ``invoice`` is locked by the caller."""
    live = [r for r in refunds if r.get("status") in ("succeeded", "pending")]
    done = await credits.refunds_recorded(session, [r["id"] for r in live])
    paid = max(invoice.amount_paid, 1)
    refunded = min(paid, sum(int(r["amount"]) for r in live if r["id"] in done))
    for refund in live:
        if refund["id"] in done:
            continue
        refunded = min(paid, refunded + int(refund["amount"]))
        target = invoice.credits * refunded // paid
        taken = max(0, target - invoice.credits_clawed_back)
        if taken:
            await credits.reverse_refund(session, user_id=invoice.user_id, refund_id=refund["id"], credits=taken,
                                         reversed_reference=references.invoice_grant(invoice.id),
                                         details={"invoice_id": invoice.id, "amount": refund["amount"],
                                                  "currency": refund.get("currency")})
        invoice.credits_clawed_back += taken
        invoice.amount_refunded = refunded
    await session.flush()
    return invoice
