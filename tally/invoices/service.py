"""Issuing invoices inside the fulfilment transaction, with gap-free yearly numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Invoice

if TYPE_CHECKING:
    from ..orders.taxes import AppliedTax

# The counter row stays locked by this UPDATE until the fulfilment transaction ends: concurrent
# fulfilments take numbers one after another, and a rollback gives the number back — no gaps, no
# duplicates. Taken last in the fulfilment so the lock is held for as short a time as possible.
_NEXT_NUMBER = text(
    "INSERT INTO invoice_counters (year, last_number) VALUES (:year, 1) "
    "ON CONFLICT (year) DO UPDATE SET last_number = invoice_counters.last_number + 1 RETURNING last_number")


def format_number(year: int, sequence: int) -> str:
    return f"INV-{year}-{sequence:06d}"


async def next_invoice_number(session: AsyncSession, year: int) -> int:
    """The year's next sequence number. Every fulfilment waits for this lock until the transaction that took
    it ends: whoever runs several units of work in one transaction (the inbox worker's batches) asks
    ``holds_invoice_counter`` after each and commits instead of holding the counter through the next ones."""
    sequence = int((await session.execute(_NEXT_NUMBER, {"year": year})).scalar_one())
    session.info[_COUNTER_TAKEN] = True
    return sequence


_COUNTER_TAKEN = "tally.invoices.counter_taken"


def holds_invoice_counter(session: AsyncSession) -> bool:
    """Whether this session's transaction took an invoice number (``next_invoice_number``), and so holds the
    year's counter, which every fulfilment queues behind, until it ends. A batch that went on to another event
    would hold it through that event's work; and, having locked that event's wallet after the counter, it could
    deadlock with a batch holding the wallet and waiting for the counter. A batch holding the counter with its
    wallets locked before it waits for nothing more, so it is never one link of such a cycle."""
    return bool(session.info.get(_COUNTER_TAKEN))


async def issue_invoice(session: AsyncSession, *, order_id: str, user_id: str, amount: int, currency: str,
                        description: str, coins: int, bonus: int, customer_name: str | None,
                        customer_email: str | None, seller_name: str, unit_amount: int | None = None,
                        discount_line: dict[str, Any] | None = None, tax: AppliedTax | None = None) -> Invoice:
    """The invoice of a paid order; at most one per order (unique ``order_id``). ``amount`` is what was
    charged; with a discount, the pack's line shows ``unit_amount`` (the catalog's price) and
    ``discount_line`` (a negative amount) follows it."""
    existing = await session.scalar(select(Invoice).where(Invoice.order_id == order_id))
    if existing is not None:
        return existing
    year = datetime.now(UTC).year
    sequence = await next_invoice_number(session, year)
    invoice = Invoice(
        number=format_number(year, sequence), year=year, sequence=sequence, order_id=order_id, user_id=user_id,
        amount=amount, currency=currency, customer_name=customer_name, customer_email=customer_email,
        seller_name=seller_name, amount_discount=-int(discount_line["amount"]) if discount_line else 0,
        lines=[{"description": description, "quantity": 1, "unit_amount": unit_amount or amount,
                "amount": unit_amount or amount, "currency": currency, "coins": coins, "bonus": bonus},
               *([discount_line] if discount_line else [])])
    if tax is not None:
        invoice.amount_tax, invoice.tax_lines, invoice.reverse_charge = tax.amount, tax.lines, tax.reverse_charge
        invoice.customer_address, invoice.customer_tax_ids = tax.address, tax.tax_ids
    session.add(invoice)
    await session.flush()
    return invoice


async def invoice_for_order(session: AsyncSession, order_id: str) -> Invoice | None:
    return await session.scalar(select(Invoice).where(Invoice.order_id == order_id))


async def list_invoices(session: AsyncSession, user_id: str, *, limit: int,
                        starting_after: int | None = None) -> tuple[list[Invoice], bool]:
    query = select(Invoice).where(Invoice.user_id == user_id)
    if starting_after is not None:
        query = query.where(Invoice.id < starting_after)
    rows = list((await session.scalars(query.order_by(Invoice.id.desc()).limit(limit + 1))).all())
    return rows[:limit], len(rows) > limit
