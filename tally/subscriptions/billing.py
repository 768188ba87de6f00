"""Subscription invoices, driven by webhooks (always re-fetching the invoice) and by reconciliation: an invoice's
current state decides — paid → its credits (``invoices``), the receipt, an upgrade's prorated credits
(``prorations``) and no more dunning; a failed renewal → dunning (``dunning``)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..receipts.service import renewal_paid
from ..stripe_gateway import InvalidRequestError, StripeGateway
from . import mirror
from .dunning import schedule_dunning, stop_dunning
from .invoices import record_paid, retrieve_invoice, subscription_of
from .plans import PlanBook
from .portal_links import customer_from_link
from .prorations import grant_invoiced_upgrade

__all__ = ["customer_from_link", "on_invoice"]  # customer_from_link: the name routes.py reaches it by

log = logging.getLogger("tally.subscriptions")


async def on_invoice(session: AsyncSession, client: StripeGateway, *, settings: Settings, book: PlanBook,
                     invoice_id: str) -> None:
    """Any ``invoice.*`` event: act on the invoice's current state (paid → grant; failed → dunning). An invoice
    Stripe no longer has (a deleted draft) has nothing to act on."""
    try:
        invoice = await retrieve_invoice(client, invoice_id)
    except InvalidRequestError as exc:
        if exc.code != "resource_missing":
            raise
        log.info("invoice %s no longer exists (a deleted draft): nothing to do", invoice_id)
        return
    subscription_id = subscription_of(invoice)
    if subscription_id is None:
        return  # a one-off invoice: not a subscription's
    row = await mirror.sync(session, client, book, subscription_id)
    if row is None:
        return
    if invoice.get("status") == "paid":
        recorded = await record_paid(session, client, book=book, row=row, invoice=invoice)
        plan = book.get(recorded.plan_id or "")
        await renewal_paid(session, settings, record=recorded, plan_name=plan.name if plan else None)
        await grant_invoiced_upgrade(session, client, book=book, row=row, invoice=invoice)
        await stop_dunning(session, invoice_id)
    elif invoice.get("status") == "open" and int(invoice.get("attempt_count") or 0) > 0 \
            and invoice.get("billing_reason") != "subscription_create":
        await schedule_dunning(session, client, settings=settings, user_id=row.user_id, invoice=invoice)
    elif invoice.get("status") in ("void", "uncollectible"):
        await stop_dunning(session, invoice_id)
