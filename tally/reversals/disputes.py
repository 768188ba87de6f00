"""Disputes (chargebacks): the disputed share of a payment's credits leaves the wallet when the dispute opens,
and comes back if the seller wins it.

Every ``charge.dispute.*`` event only names the dispute: it is re-fetched and its current state decides, under
the lock of the payment it disputes (the order row or the subscription invoice row):
- an inquiry (``warning_…``) moves no money and takes nothing;
- any other dispute takes back ``floor(credits × disputed / paid)``, at most what refunds left, once
  (``dispute:{dp}:withdrawn``);
- a won one also gives that back, once (``dispute:{dp}:reinstated``).
So any order of ``created``, ``funds_withdrawn``, ``funds_reinstated`` and ``closed``, delivered any number of
times, ends in the same ledger. The operator is told of each new dispute by email, once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..config import Settings
from ..email.service import Email, enqueue
from ..ledger import credits
from ..orders.events import on_payment_intent
from ..orders.models import Order
from ..orders.repository import lock_order
from ..stripe_gateway import StripeGateway, object_id, stripe_call
from .models import Dispute
from .payments import CreditedPayment, of_invoice, of_order, recorded_invoice, retrieve_charge

log = logging.getLogger("tally.reversals")


async def retrieve_dispute(client: StripeGateway, dispute_id: str) -> dict[str, Any]:
    async with stripe_call("retrieving the dispute"):
        return await client.retrieve_dispute(dispute_id)


async def on_dispute(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                     dispute_id: str) -> Dispute | None:
    """Any ``charge.dispute.*`` event: apply the dispute's current state once."""
    dispute = await retrieve_dispute(client, dispute_id)
    charge = await retrieve_charge(client, str(object_id(dispute.get("charge"))))
    payment = await _credited_payment(session, client, settings=settings, charge=charge)
    if payment is None:
        log.info("dispute %s is on charge %s, which paid nothing Tally credited: ignored", dispute_id, charge["id"])
        return None
    row = await _record(session, dispute, charge, payment)
    if row.is_inquiry:
        return row
    if row.credits_withdrawn == 0:
        row.credits_withdrawn = _credits_at_stake(payment, row.amount)
        if row.credits_withdrawn:
            await credits.withdraw_for_dispute(session, user_id=payment.user_id, dispute_id=row.id,
                                               credits=row.credits_withdrawn, reversed_reference=payment.reference,
                                               order_id=row.order_id, details=_details(row))
    if row.status == "won" and row.credits_withdrawn and not row.credits_reinstated:
        row.credits_reinstated = row.credits_withdrawn
        await credits.reinstate_after_dispute(session, user_id=payment.user_id, dispute_id=row.id,
                                              credits=row.credits_reinstated, reversed_reference=payment.reference,
                                              order_id=row.order_id, details=_details(row))
    await session.flush()
    await _tell_operator(session, settings, row)
    return row


def _credits_at_stake(payment: CreditedPayment, disputed: int) -> int:
    """The disputed share of the payment's credits, less what its refunds already took back."""
    if payment.amount <= 0:
        return 0
    share = payment.credits * min(disputed, payment.amount) // payment.amount
    refunded = payment.order.coins_clawed_back if payment.order else (
        payment.invoice.credits_clawed_back if payment.invoice else 0)
    return max(0, min(share, payment.credits - refunded))


async def _credited_payment(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                            charge: dict[str, Any]) -> CreditedPayment | None:
    invoice = await recorded_invoice(session, client, charge)
    if invoice is not None:
        return of_invoice(invoice) if invoice.credits > 0 else None
    payment_intent_id = object_id(charge.get("payment_intent"))
    if not payment_intent_id:
        return None
    order_id = await session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == payment_intent_id))
    if order_id is None:
        # Not fulfilled yet (the dispute overtook the payment's events), or not Tally's: the payment's own
        # handler decides, and fulfils it first when it is a paid order of Tally's.
        order = await on_payment_intent(session, client, settings=settings,
                                               payment_intent_id=payment_intent_id)
        order_id = order.id if order is not None else None
    if order_id is None:
        return None
    order = await lock_order(session, order_id)
    if order is None or order.status not in ("paid", "refunded"):
        return None
    return of_order(order)


async def _record(session: AsyncSession, dispute: dict[str, Any], charge: dict[str, Any],
                  payment: CreditedPayment) -> Dispute:
    due = (dispute.get("evidence_details") or {}).get("due_by")
    values = {"status": str(dispute.get("status")), "reason": dispute.get("reason"),
              "amount": int(dispute.get("amount") or 0), "evidence_due_by": due, "updated_at": func.now()}
    await session.execute(insert(Dispute).values(
        id=dispute["id"], user_id=payment.user_id, charge_id=charge["id"],
        payment_intent_id=object_id(charge.get("payment_intent")),
        order_id=payment.order.id if payment.order else None,
        subscription_invoice_id=payment.invoice.id if payment.invoice else None,
        currency=str(dispute.get("currency") or charge.get("currency") or "usd"),
        stripe_created=int(dispute.get("created") or 0), **values)
        .on_conflict_do_update(index_elements=["id"], set_=values))
    row = await session.scalar(select(Dispute).where(Dispute.id == dispute["id"]).with_for_update()
                               .execution_options(populate_existing=True))
    assert row is not None
    return row


def _details(row: Dispute) -> dict[str, Any]:
    return {"dispute_id": row.id, "charge_id": row.charge_id, "amount": row.amount, "currency": row.currency,
            "reason": row.reason, "invoice_id": row.subscription_invoice_id}


async def _tell_operator(session: AsyncSession, settings: Settings, row: Dispute) -> None:
    to = settings.operator_email_address
    if not to:
        log.warning("dispute %s opened; set TALLY_OPERATOR_EMAIL to be told by email", row.id)
        return
    amount = money.format_amount(row.amount, row.currency)
    due = (dt.datetime.fromtimestamp(row.evidence_due_by, dt.UTC).strftime("%d %B %Y %H:%M UTC")
           if row.evidence_due_by else "the date in Stripe's Dashboard")
    paid_for = f"order {row.order_id}" if row.order_id else f"subscription invoice {row.subscription_invoice_id}"
    await enqueue(session, settings, dedupe_key=f"dispute:{row.id}:opened", kind="dispute_opened", user_id=None,
                  email=Email(to=to, subject=f"New dispute: {amount} ({row.reason or 'no reason given'})",
                              body=(f"A customer disputed {amount} of charge {row.charge_id} ({paid_for}, user "
                                    f"{row.user_id}).\n\nDispute: {row.id}\nReason: {row.reason}\n"
                                    f"Status: {row.status}\n"
                                    f"Respond with evidence by {due}.\n\n{row.credits_withdrawn} credits were taken "
                                    f"back from the user; they are given back if you win the dispute.\n\n"
                                    f"Open disputes: `tally disputes`, or the Disputes section of /admin.")))
