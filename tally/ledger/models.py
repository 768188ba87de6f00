"""The double-entry ledger: accounts, transactions whose entries sum to zero, and the wallet balance row
that is updated in the same database transaction as the entries.

Rules enforced by PostgreSQL, not only by code (see migration 0002):
- ``ledger_transactions.reference`` is unique: one purchase per order, one spend per idempotency key,
  one clawback per Stripe refund;
- a deferred constraint trigger refuses a commit whose transaction's entries do not sum to zero;
- entries are append-only (UPDATE and DELETE are refused).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base

# System accounts, created by the migration; the other side of every wallet movement.
PURCHASES = "system:purchases"  # coins sold for money
BONUSES = "system:bonuses"  # promotional coins given with a pack (and, later, grants)
SPENDING = "system:spending"  # coins consumed in the app
REFUNDS = "system:refunds"  # coins taken back when Stripe refunds a payment
SYSTEM_ACCOUNTS = (PURCHASES, BONUSES, SPENDING, REFUNDS)


def wallet_code(user_id: str) -> str:
    return f"wallet:{user_id}"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # wallet | system
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("kind IN ('wallet', 'system')", name="kind"),)


class WalletBalance(Base):
    """The user's current balance, maintained with ``UPDATE … SET balance = balance + :delta RETURNING``.
    It may be negative only after a refund clawed back coins that were already spent (see
    ``tally.ledger.service.claw_back_refund``); spending never takes it below zero."""

    __tablename__ = "wallet_balances"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # order:{id}:purchase | spend:{user}:{idempotency key} | refund:{re_…}
    reference: Mapped[str] = mapped_column(String(600), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # purchase | spend | refund
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    description: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    entries: Mapped[list[LedgerEntry]] = relationship(back_populates="transaction", lazy="raise",
                                                      order_by="LedgerEntry.id")

    __table_args__ = (Index("ix_ledger_transactions_user_id_id", "user_id", "id"),)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed: + credits the account, − debits it
    balance_after: Mapped[int | None] = mapped_column(BigInteger)  # set on wallet entries
    kind: Mapped[str] = mapped_column(String(32))  # coins | bonus | spend | clawback
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries", lazy="raise")

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_transaction_id", "transaction_id"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )
