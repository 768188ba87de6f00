"""Which payment Tally credited a Stripe charge belongs to: a pack order or a subscription invoice.

Both are found by the charge's PaymentIntent (each is unique per order and per recorded invoice). A charge
Tally does not know yet may still be one of its payments whose own event has not been processed: an order
names itself in metadata (``tally.orders`` then fulfils it first), and an invoice's payment is found through
Stripe's invoice payments; both make the event retry until the payment is recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..ledger import references
from ..orders.models import Order
from ..stripe_gateway import StripeGateway, object_id, stripe_call
from ..subscriptions.models import SubscriptionInvoice

RECORD_GRACE_SECONDS = 24 * 3600  # how long a charge of an unrecorded subscription invoice is retried


class PaymentNotRecordedYet(RuntimeError):
    """The charge belongs to a subscription invoice whose ``invoice.paid`` is not processed yet: retry."""


@dataclass(frozen=True)
class CreditedPayment:
    """A payment and the credits it granted (the ledger transaction ``reference``)."""

    user_id: str
    reference: str
    amount: int  # money paid, minor units
    credits: int
    order: Order | None = None
    invoice: SubscriptionInvoice | None = None


async def retrieve_charge(client: StripeGateway, charge_id: str) -> dict[str, Any]:
    async with stripe_call("retrieving the charge"):
        return await client.retrieve_charge(charge_id)


async def recorded_invoice(session: AsyncSession, client: StripeGateway,
                           charge: dict[str, Any]) -> SubscriptionInvoice | None:
    """The recorded subscription invoice this charge paid, locked; None when the charge is not an invoice's.
    Raises ``PaymentNotRecordedYet`` for an invoice's charge that Tally has not recorded yet."""
    payment_intent_id = object_id(charge.get("payment_intent"))
    if not payment_intent_id:
        return None
    found = await session.scalar(select(SubscriptionInvoice)
                                 .where(SubscriptionInvoice.stripe_payment_intent_id == payment_intent_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if found is not None:
        return found
    if await session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == payment_intent_id)):
        return None
    async with stripe_call("listing invoice payments"):
        listed = await client.list_invoice_payments(payment_intent_id)
    if not listed:
        return None
    if time.time() - int(charge.get("created") or 0) > RECORD_GRACE_SECONDS:
        return None  # an invoice Tally never recorded (not a subscription of its plans): nothing to take back
    raise PaymentNotRecordedYet(f"charge {charge['id']} pays invoice {object_id(listed[0].get('invoice'))}, "
                                "not recorded yet")


def of_order(order: Order) -> CreditedPayment:
    return CreditedPayment(order.user_id, references.order_purchase(order.id), order.amount, order.total_coins,
                           order=order)


def of_invoice(invoice: SubscriptionInvoice) -> CreditedPayment:
    return CreditedPayment(invoice.user_id, references.invoice_grant(invoice.id), invoice.amount_paid,
                           invoice.credits, invoice=invoice)
