"""Invoices: one per paid order, numbered without gaps per calendar year (``INV-2026-000123``).

The number comes from ``invoice_counters`` incremented inside the fulfilment transaction: the counter row
stays locked until that transaction commits, and a rollback returns the number, so no gap can appear."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, DateTime, ForeignKey, Identity, Index, Integer, String, UniqueConstraint,
                        func)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class InvoiceCounter(Base):
    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # what was charged, after any discount
    amount_discount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    amount_tax: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # within ``amount``
    # One entry per rate: label, percentage, jurisdiction, taxable amount, tax, inclusive (``tally.orders.taxes``).
    tax_lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    customer_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    customer_tax_ids: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    reverse_charge: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    currency: Mapped[str] = mapped_column(String(3))
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    seller_name: Mapped[str] = mapped_column(String(255))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("year", "sequence", name="uq_invoices_year_sequence"),
        Index("ix_invoices_user_id_id", "user_id", "id"),
    )
