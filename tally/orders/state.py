"""Stripe state → order state: bring an order in line with its Checkout Session or PaymentIntent as just
retrieved from Stripe (paid → ``fulfilment``; declined → failed; expired → expired). Every function is
idempotent and acts under the order row's lock.

Several doors race to here: the webhook handlers (``checkout.session.completed``,
``checkout.session.async_payment_succeeded``, ``payment_intent.succeeded``, in any order, any number of times:
``events``) and ``GET /v1/orders/{id}`` when the user lands back on the success page (``reading``). Each door
re-fetches from Stripe and hands the *current* state here. Nothing here commits: routes and webhook handlers
own the transaction."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..stripe_gateway import StripeGateway, object_id, stripe_call
from .discounts import discount_of
from .fulfilment import fulfil_paid_order
from .models import Order
from .repository import OrderNotFoundYet, lock_order
from .taxes import tax_of

log = logging.getLogger("tally.orders")


async def retrieve_checkout_session(client: StripeGateway, session_id: str) -> dict[str, Any]:
    async with stripe_call("retrieving the checkout session"):
        return await client.retrieve_checkout_session(session_id, expand=["payment_intent"])


def expanded_payment_intent(checkout: dict[str, Any]) -> dict[str, Any] | None:
    pi = checkout.get("payment_intent")
    return pi if isinstance(pi, dict) else None


async def apply_session_state(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                              order_id: str, checkout: dict[str, Any]) -> Order | None:
    """Bring the order in line with a freshly retrieved Checkout Session: paid → fulfil; expired →
    expired; a failed payment attempt → failed (a later success still fulfils). Idempotent."""
    pi = expanded_payment_intent(checkout)
    # A code that took the whole price leaves nothing to pay: the session completes "no_payment_required".
    free = checkout.get("status") == "complete" and checkout.get("payment_status") == "no_payment_required"
    if checkout.get("payment_status") == "paid" or free:
        details = checkout.get("customer_details") or {}
        return await fulfil_paid_order(
            session, order_id=order_id, settings=settings,
            payment_intent_id=object_id(checkout.get("payment_intent")), checkout_session_id=checkout.get("id"), paid_amount=checkout.get("amount_total"),
            paid_currency=checkout.get("currency"), customer_name=details.get("name"),
            customer_email=details.get("email"), discount=await discount_of(client, checkout),
            tax=await tax_of(client, checkout))
    if checkout.get("status") == "expired":
        return await mark_expired(session, order_id=order_id)
    # A declined attempt on an open session (the buyer may retry on the page), or a delayed method that
    # failed after the session completed unpaid (nothing more will happen).
    if pi is not None and pi.get("status") in ("requires_payment_method", "canceled") and (
            pi.get("last_payment_error") or checkout.get("status") == "complete"):
        return await mark_failed(session, order_id=order_id,
                                 message=(pi.get("last_payment_error") or {}).get("message"))
    return await session.get(Order, order_id)


async def retrieve_payment_intent(client: StripeGateway, payment_intent_id: str) -> dict[str, Any]:
    """The PaymentIntent as Stripe has it now, with its latest charge (billing details for the invoice)."""
    async with stripe_call("retrieving the payment intent"):
        return await client.retrieve_payment_intent(payment_intent_id, expand=["latest_charge"])


async def apply_payment_intent_state(session: AsyncSession, *, settings: Settings, order_id: str,
                                     pi: dict[str, Any]) -> Order | None:
    """Bring a PaymentIntent order in line with a freshly retrieved PaymentIntent: succeeded → fulfil
    (the same ``fulfil_paid_order`` as Checkout); a declined or failed attempt → failed with Stripe's
    message; processing (bank debits) or waiting for the customer's redirect → pending. Idempotent."""
    order = await lock_order(session, order_id)
    if order is None:
        raise OrderNotFoundYet(order_id)
    if order.stripe_payment_intent_id not in (None, pi.get("id")):
        log.warning("payment intent %s is not the payment of order %s: ignored", pi.get("id"), order_id)
        return order
    status = pi.get("status")
    if status == "succeeded":
        charge = pi.get("latest_charge")
        billing = (charge.get("billing_details") if isinstance(charge, dict) else None) or {}
        return await fulfil_paid_order(
            session, order_id=order_id, settings=settings, payment_intent_id=pi.get("id"),
            paid_amount=pi.get("amount_received") or pi.get("amount"), paid_currency=pi.get("currency"),
            customer_name=billing.get("name"), customer_email=billing.get("email") or pi.get("receipt_email"))
    error = pi.get("last_payment_error") or {}
    if status == "requires_payment_method" and error:
        return await mark_failed(session, order_id=order_id, message=error.get("message"))
    if status == "canceled":
        return await mark_failed(session, order_id=order_id, message="The payment was canceled.")
    if status in ("processing", "requires_action") and order.status == "failed":
        # A new attempt after a failed one (another card, a bank debit): the order waits again.
        order.status = "pending"
        order.failure_message = None
        await session.flush()
    return order


async def mark_failed(session: AsyncSession, *, order_id: str, message: str | None) -> Order | None:
    """A payment attempt failed (declined card, failed async payment). Only a pending order changes;
    the Checkout page stays usable, and a later successful attempt still fulfils the order."""
    order = await lock_order(session, order_id)
    if order is not None and order.status in ("pending", "failed"):
        order.status = "failed"
        order.failure_message = (message or "The payment failed.")[:1000]
        await session.flush()
    return order


async def mark_expired(session: AsyncSession, *, order_id: str) -> Order | None:
    """The Checkout Session expired unpaid: the order can no longer be paid."""
    order = await lock_order(session, order_id)
    if order is not None and order.status in ("pending", "failed"):
        order.status = "expired"
        await session.flush()
    return order
