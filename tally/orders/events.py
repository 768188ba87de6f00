"""The webhook entry points of orders (called by ``tally.orders.handlers`` and by reconciliation): each re-fetches
the Stripe object an event names, finds the Tally order in its metadata, and applies its current state
(``state``)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..stripe_gateway import StripeGateway, object_id
from .models import Order
from .repository import OrderNotFoundYet
from .state import (apply_payment_intent_state, apply_session_state, expanded_payment_intent,
                    retrieve_checkout_session, retrieve_payment_intent)

log = logging.getLogger("tally.orders")


# An event naming an order we cannot find is retried while the order may still be committing (the
# checkout request that created it is a few seconds old at most); after this it is not ours to fulfil.
UNKNOWN_ORDER_GRACE_SECONDS = 600


def order_id_from(metadata: dict[str, Any] | None, what: str) -> str | None:
    """The Tally order named in Stripe metadata, or None when the object is not Tally's to act on."""
    order_id = (metadata or {}).get("order_id")
    if not order_id:
        log.info("%s has no metadata.order_id: not created by Tally, ignored", what)
        return None
    try:
        uuid.UUID(str(order_id))
    except ValueError:
        log.info("%s names order %r, which is not a Tally order id: ignored", what, order_id)
        return None
    return str(order_id)


async def known_order(session: AsyncSession, order_id: str, created: int | None, what: str) -> bool:
    if await session.scalar(select(Order.id).where(Order.id == order_id)) is not None:
        return True
    if created is not None and time.time() - created > UNKNOWN_ORDER_GRACE_SECONDS:
        log.warning("%s names order %s, unknown here: ignored", what, order_id)
        return False
    raise OrderNotFoundYet(f"{what} names order {order_id}, not in the database yet")


async def on_checkout_session(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                              checkout_session_id: str) -> Order | None:
    """``checkout.session.*`` events: re-fetch the session and apply its current state."""
    checkout = await retrieve_checkout_session(client, checkout_session_id)
    what = f"checkout session {checkout_session_id}"
    order_id = order_id_from(checkout.get("metadata"), what)
    if order_id is None or not await known_order(session, order_id, checkout.get("created"), what):
        return None
    return await apply_session_state(session, client, settings=settings, order_id=order_id, checkout=checkout)


async def on_payment_intent(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                            payment_intent_id: str) -> Order | None:
    """``payment_intent.*`` events: find the order through the PaymentIntent's metadata. A PaymentIntent
    order follows its PaymentIntent; a Checkout order acts on its Checkout Session as retrieved now (it
    carries the customer details for the invoice)."""
    pi = await retrieve_payment_intent(client, payment_intent_id)
    what = f"payment intent {payment_intent_id}"
    order_id = order_id_from(pi.get("metadata"), what)
    if order_id is None or not await known_order(session, order_id, pi.get("created"), what):
        return None
    order = await session.get(Order, order_id)
    assert order is not None
    if order.kind == "payment_intent":
        # Paid by a PaymentIntent of its own (no Checkout Session): the PaymentIntent is the whole story.
        return await apply_payment_intent_state(session, settings=settings, order_id=order_id, pi=pi)
    if not order.stripe_checkout_session_id:
        raise OrderNotFoundYet(f"order {order_id} has no checkout session yet")
    checkout = await retrieve_checkout_session(client, order.stripe_checkout_session_id)
    if object_id(checkout.get("payment_intent")) not in (None, payment_intent_id):
        log.warning("%s is not the payment of order %s: ignored", what, order_id)
        return order
    if checkout.get("payment_status") != "paid" and pi.get("status") == "succeeded":
        # The session may lag a moment behind its PaymentIntent; the PaymentIntent is the money.
        checkout = {**checkout, "payment_status": "paid", "payment_intent": pi,
                    "amount_total": pi.get("amount_received") or pi.get("amount"), "currency": pi.get("currency")}
    elif expanded_payment_intent(checkout) is None:
        checkout = {**checkout, "payment_intent": pi}
    return await apply_session_state(session, client, settings=settings, order_id=order_id, checkout=checkout)
