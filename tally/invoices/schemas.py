"""Response shapes of invoices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from .models import Invoice


class InvoiceOut(BaseModel):
    number: str
    order_id: str
    amount: int
    currency: str
    customer_name: str | None
    customer_email: str | None
    seller_name: str
    lines: list[dict[str, Any]]
    issued_at: datetime

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceOut:
        return cls(number=invoice.number, order_id=invoice.order_id, amount=invoice.amount,
                   currency=invoice.currency, customer_name=invoice.customer_name,
                   customer_email=invoice.customer_email, seller_name=invoice.seller_name, lines=invoice.lines,
                   issued_at=invoice.issued_at)


class InvoiceList(BaseModel):
    object: str = "list"
    data: list[InvoiceOut]
    has_more: bool
    next_cursor: str | None
