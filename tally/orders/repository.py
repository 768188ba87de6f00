"""Finding and locking orders: by id, Checkout Session id or PaymentIntent id; under the row lock that serialises
the doors to fulfilment (``state``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Order


class OrderNotFoundYet(Exception):
    """A Stripe object names a Tally order that is not in the database yet: raise so the event is retried."""


async def find_order(session: AsyncSession, order_or_session_id: str) -> Order | None:
    """An order by its id, its Checkout Session id (``cs_…``) or its PaymentIntent id (``pi_…``)."""
    if order_or_session_id.startswith("pi_"):
        return await session.scalar(select(Order).where(Order.stripe_payment_intent_id == order_or_session_id))
    column = Order.stripe_checkout_session_id if order_or_session_id.startswith("cs_") else Order.id
    if column is Order.id:
        try:
            uuid.UUID(order_or_session_id)
        except ValueError:
            return None
    return await session.scalar(select(Order).where(column == order_or_session_id))


async def lock_order(session: AsyncSession, order_id: str) -> Order | None:
    return await session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                                .execution_options(populate_existing=True))
