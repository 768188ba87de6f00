"""Files sent with an email, rendered from the database when the email is sent or shown rather than stored
with it: a receipt's invoice PDF (``invoice:INV-…``) is rendered by the same code as the account page's
download, so fulfilment never spends time on a PDF and the file always matches the stored invoice."""

from __future__ import annotations


from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..invoices.models import Invoice
from ..invoices.pdf import render_invoice_pdf, status_of
from ..orders.models import Order
from .messages import Attachment
from .models import OutboxEmail


async def load_attachment(session: AsyncSession, row: OutboxEmail) -> Attachment | None:
    """The row's attachment, or None when it has none (or what it names is gone)."""
    ref = row.attachment_ref or ""
    if not ref.startswith("invoice:") or not row.attachment_name:
        return None
    data = await invoice_pdf(session, ref.removeprefix("invoice:"))
    return Attachment(row.attachment_name, "application/pdf", data) if data is not None else None


async def invoice_pdf(session: AsyncSession, number: str) -> bytes | None:
    found = (await session.execute(select(Invoice, Order).join(Order, Order.id == Invoice.order_id)
                                   .where(Invoice.number == number))).first()
    if found is None:
        return None
    invoice, order = found
    return render_invoice_pdf(invoice, status_of(order.status, order.amount, order.amount_refunded))
