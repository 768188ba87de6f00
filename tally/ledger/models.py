"""The double-entry ledger: accounts, transactions whose entries sum to zero, and the wallet balance row
that is updated in the same database transaction as the entries.

Rules enforced by PostgreSQL, not only by code (see migration 0002):
- ``ledger_transactions.reference`` is unique: one purchase per order, one spend per idempotency key,
  one clawback per Stripe refund;
- a deferred constraint trigger refuses a commit whose transaction's entries do not sum to zero;
- entries are append-only (UPDATE and DELETE are refused).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base

# System accounts, created by the migration; the other side of every wallet movement.
PURCHASES = "system:purchases"  # coins sold for money
BONUSES = "system:bonuses"  # promotional coins given with a pack (and, later, grants)
SPENDING = "system:spending"  # coins consumed in the app
REFUNDS = "system:refunds"  # coins taken back when Stripe refunds a payment
PROMOTIONS = "system:promotions"  # promotional grants made by the operator
ADJUSTMENTS = "system:adjustments"  # the operator's manual corrections, up or down
EXPIRED = "system:expired"  # credits that lapsed at their grant's expiry
DISPUTES = "system:disputes"  # credits taken back by a chargeback, and given back when it is won
SYSTEM_ACCOUNTS = (PURCHASES, BONUSES, SPENDING, REFUNDS, PROMOTIONS, ADJUSTMENTS, EXPIRED, DISPUTES)


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
    """The user's current balance (credits owned, held ones included), changed only by the ledger's
    functions under this row's lock. Always ``balance = Σ grants' remaining + held − debt``: ``held`` is
    what open holds reserve, ``debt`` what a reversal (refund, dispute) took beyond every grant, which the
    next grant pays first. The balance is negative only through such a debt; spending never makes one."""

    __tablename__ = "wallet_balances"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    held: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    debt: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # built by tally.ledger.references, one builder per kind of movement
    reference: Mapped[str] = mapped_column(String(600), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # see tally.ledger.references.Kind
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
    kind: Mapped[str] = mapped_column(String(32))  # coins | bonus | spend | clawback | expiry | dispute | …
    grant_id: Mapped[int | None] = mapped_column(BigInteger)  # on wallet entries: the grant credited or drawn
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries", lazy="raise")

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_transaction_id", "transaction_id"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )


class CreditGrant(Base):
    """Credits that entered a wallet together, and what is left of them. Debits draw from grants in the
    order of ``tally.ledger.credits`` (lower ``priority`` first, then sooner ``expires_at``, then older)."""

    __tablename__ = "credit_grants"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(16))  # purchase | subscription | proration | promotion | …
    category: Mapped[str] = mapped_column(String(16))  # paid | promotional
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)  # not yet spent, held, expired or taken back
    priority: Mapped[int] = mapped_column(Integer)
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    subscription_id: Mapped[str | None] = mapped_column(String(255))  # the subscription whose period it is
    rollover_cap: Mapped[int | None] = mapped_column(BigInteger)  # at most this much carries into the next period
    # What the customer paid for the grant (net of tax); NULL when nobody paid for it. Migration 0014 counts
    # ``remaining × paid_amount ÷ amount`` into ``credit_money_totals`` as the grant is drawn.
    paid_amount: Mapped[int | None] = mapped_column(BigInteger)
    paid_currency: Mapped[str | None] = mapped_column(String(3))


class CreditHold(Base):
    """Credits reserved by ``POST /v1/credits/holds`` until captured, released or expired. ``grant_ids`` /
    ``grant_amounts`` say which grants the reserved credits came from (they left those grants' remaining)."""

    __tablename__ = "credit_holds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # held | captured | released | expired
    captured: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    grant_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    grant_amounts: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))


class CreditMoneyTotal(Base):
    """The money paid for the paid credits still in wallets, per currency (an exact fraction of minor units):
    the trigger of migration 0014 appends a ``credit_money_deltas`` row whenever a paid grant's remaining
    changes, and the worker's fold adds them in here."""

    __tablename__ = "credit_money_totals"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric)


class CreditTotal(Base):
    """The dashboard's counters: credits granted, used, expired and reversed per UTC day and category. Each
    movement appends a ``credit_total_deltas`` row in its own transaction; the worker folds them in here."""

    __tablename__ = "credit_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)  # paid | promotional
    movement: Mapped[str] = mapped_column(String(16), primary_key=True)  # granted | used | expired | reversed
    amount: Mapped[int] = mapped_column(BigInteger)
