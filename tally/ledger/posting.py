"""Posting one balanced ledger transaction, exactly once per reference, in the caller's transaction.

``post`` inserts the header with its unique reference (``INSERT … ON CONFLICT DO NOTHING``: a concurrent
insert of the same reference waits for the first to commit or roll back, then finds it) and then applies its
credits and debits through the database's ``tally_ledger_credit`` / ``tally_ledger_draw`` (migration 0009):
each locks the wallet row first, writes its grant or draws from the grants in order, chains the wallet
entries' ``balance_after`` and writes the counter entry, so every step is balanced on its own. A reference
that exists already is a replay: nothing is written and the first movement is returned.

Nothing here commits: a failure anywhere rolls back the entries, the grants, the balance and whatever else the
caller wrote (order status, invoice) together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .models import LedgerAccount, LedgerEntry, LedgerTransaction, WalletBalance, wallet_code
from .references import Kind


@dataclass(frozen=True)
class Movement:
    """A posted ledger transaction: the wallet's net change and its balance right after."""

    transaction_id: int
    amount: int  # net change of the wallet
    balance: int
    created: bool  # False when the reference already existed (an idempotent replay)
    grant_ids: tuple[int, ...] = ()  # the grants this transaction created


@dataclass(frozen=True)
class Paid:
    """What a customer paid for credits: minor units (net of tax) of an ISO currency."""

    amount: int
    currency: str


@dataclass(frozen=True)
class Credit:
    """Credits entering the wallet as one new grant, from the system account ``counter``; ``paid`` is what the
    customer paid for them (None when nobody did), which the dashboard's money outstanding counts."""

    amount: int
    entry_kind: str
    counter: str | None
    source: str  # purchase | subscription | proration | promotion | adjustment | reinstatement | rollover
    category: str  # paid | promotional
    priority: int
    expires_at: datetime | None = None
    subscription_id: str | None = None
    rollover_cap: int | None = None
    paid: Paid | None = None


@dataclass(frozen=True)
class Debit:
    """Credits leaving the wallet to ``counter``, drawn from ``first_grants`` first (only from them when
    ``only_first``), then in the normal order; with ``allow_debt`` what no grant covers becomes debt."""

    amount: int
    entry_kind: str
    counter: str | None
    first_grants: Sequence[int] = field(default_factory=tuple)
    only_first: bool = False
    allow_debt: bool = False


class UnbalancedTransaction(ValueError):
    pass


def utc_now() -> datetime:
    return datetime.now(UTC)


async def ensure_wallet(session: AsyncSession, user_id: str) -> int:
    """The user's wallet account id, creating the account and its balance row on first use (the user row
    must exist). Concurrent first uses converge on one account through the unique code."""
    found = await session.scalar(select(WalletBalance.account_id).where(WalletBalance.user_id == user_id))
    if found is not None:
        return found
    account_id = await session.scalar(
        insert(LedgerAccount).values(code=wallet_code(user_id), kind="wallet", user_id=user_id)
        .on_conflict_do_nothing(index_elements=["code"]).returning(LedgerAccount.id))
    if account_id is None:
        account_id = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.code == wallet_code(user_id)))
    assert account_id is not None
    await session.execute(insert(WalletBalance).values(user_id=user_id, account_id=account_id, balance=0)
                          .on_conflict_do_nothing(index_elements=["user_id"]))
    return int(account_id)


_CREDIT = text("SELECT grant_id, balance FROM tally_ledger_credit(:tx, :user_id, :amount, :kind, :counter, :source, "
               ":category, :priority, :now, :expires_at, :subscription_id, :rollover_cap)")
_PAID = text("UPDATE credit_grants SET paid_amount = :amount, paid_currency = :currency WHERE id = :grant_id")
_DRAW = text("SELECT tally_ledger_draw(:tx, :user_id, :amount, :kind, :counter, :now, "
             "CAST(:first AS bigint[]), :only_first, :allow_debt)")


async def post(session: AsyncSession, *, reference: str, kind: Kind, user_id: str, description: str | None = None,
               details: dict[str, Any] | None = None, order_id: str | None = None,
               steps: Sequence[Credit | Debit] = (), now: datetime | None = None) -> Movement:
    """Post the transaction ``reference`` once: its header, then each step in order. A transaction with no
    step is a header alone (it records that the reference was handled, e.g. a trial invoice granting 0)."""
    if any(step.amount <= 0 for step in steps):
        raise UnbalancedTransaction(f"{reference}: every credit and debit moves a positive amount")
    wallet = await ensure_wallet(session, user_id)
    tx_id = await session.scalar(
        insert(LedgerTransaction).values(reference=reference, kind=str(kind), user_id=user_id, order_id=order_id,
                                         description=description, details=details or {})
        .on_conflict_do_nothing(index_elements=["reference"]).returning(LedgerTransaction.id))
    if tx_id is None:
        return await existing_movement(session, reference, wallet)
    when = now or utc_now()
    balance, net, grants = None, 0, []
    for step in steps:
        if isinstance(step, Credit):
            row = (await session.execute(_CREDIT, {
                "tx": tx_id, "user_id": user_id, "amount": step.amount, "kind": step.entry_kind,
                "counter": step.counter, "source": step.source, "category": step.category, "priority": step.priority,
                "now": when, "expires_at": step.expires_at, "subscription_id": step.subscription_id,
                "rollover_cap": step.rollover_cap})).one()
            grants.append(int(row.grant_id))
            if step.paid is not None:  # a second statement keeps tally_ledger_credit's signature (migration 0009)
                await session.execute(_PAID, {"amount": step.paid.amount, "currency": step.paid.currency.lower(),
                                              "grant_id": row.grant_id})
            balance, net = int(row.balance), net + step.amount
        else:
            balance = int((await session.execute(_DRAW, {
                "tx": tx_id, "user_id": user_id, "amount": step.amount, "kind": step.entry_kind,
                "counter": step.counter, "now": when, "first": list(step.first_grants),
                "only_first": step.only_first, "allow_debt": step.allow_debt})).scalar_one())
            net -= step.amount
    if balance is None:
        balance = await get_balance(session, user_id)
    return Movement(int(tx_id), net, balance, created=True, grant_ids=tuple(grants))


async def existing_movement(session: AsyncSession, reference: str, wallet_account_id: int) -> Movement:
    """The movement already posted under ``reference`` (a replay)."""
    tx_id = await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.reference == reference))
    assert tx_id is not None, reference
    rows = (await session.execute(select(LedgerEntry.amount, LedgerEntry.balance_after, LedgerEntry.grant_id)
                                  .where(LedgerEntry.transaction_id == tx_id,
                                         LedgerEntry.account_id == wallet_account_id)
                                  .order_by(LedgerEntry.id))).all()
    if rows:
        balance = int(rows[-1].balance_after)
    else:
        balance = await get_balance_of_account(session, wallet_account_id)
    grants = tuple(int(r.grant_id) for r in rows if r.amount > 0 and r.grant_id is not None)
    return Movement(int(tx_id), sum(r.amount for r in rows), balance, created=False, grant_ids=grants)


async def get_balance(session: AsyncSession, user_id: str) -> int:
    balance = await session.scalar(select(WalletBalance.balance).where(WalletBalance.user_id == user_id))
    return int(balance or 0)


async def get_balance_of_account(session: AsyncSession, account_id: int) -> int:
    balance = await session.scalar(select(WalletBalance.balance).where(WalletBalance.account_id == account_id))
    return int(balance or 0)
