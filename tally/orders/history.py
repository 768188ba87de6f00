"""Read-only queries for the account pages: a user's orders (paid, failed with the decline message, expired,
still open) and one of their invoices with the order behind it. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..invoices.models import Invoice
from .models import Order


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    has_more: bool


async def list_orders(session: AsyncSession, user_id: str, *, limit: int = 20) -> OrderPage:
    """The user's orders, newest first (all statuses: the payment history shows failed attempts too)."""
    rows = list((await session.scalars(
        select(Order).where(Order.user_id == user_id)
        .order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1))).all())
    return OrderPage(rows[:limit], len(rows) > limit)


@dataclass(frozen=True)
class InvoiceWithOrder:
    invoice: Invoice
    order: Order


async def find_user_invoice(session: AsyncSession, user_id: str, number: str) -> InvoiceWithOrder | None:
    """The invoice numbered ``number`` if it belongs to ``user_id``; None otherwise, so that another user's
    invoice is indistinguishable from one that does not exist."""
    row = (await session.execute(
        select(Invoice, Order).join(Order, Order.id == Invoice.order_id)
        .where(Invoice.number == number, Invoice.user_id == user_id))).first()
    return InvoiceWithOrder(row[0], row[1]) if row is not None else None
