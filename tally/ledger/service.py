"""Reading wallets: the balance and its parts, the grants, and the ledger transactions a user sees.

Writing is elsewhere in this package: ``credits`` (every rule of credits in and out), ``spending`` (spends and
holds), ``expiry`` (lapsed grants), all through ``posting`` or the database's ledger functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .models import CreditGrant, LedgerEntry, LedgerTransaction, WalletBalance
from .posting import get_balance, utc_now

__all__ = ["BalanceView", "GrantView", "Outstanding", "TransactionView", "balance_view", "daily_totals",
           "fold_totals", "get_balance", "list_transactions", "lock_wallet", "outstanding", "spendable", "totals"]

EXPIRING_SOON = timedelta(days=30)


async def lock_wallet(session: AsyncSession, user_id: str) -> None:
    """Take the wallet's row lock, as every movement of its credits does first."""
    await session.execute(text("SELECT 1 FROM wallet_balances WHERE user_id = :user_id FOR UPDATE"),
                          {"user_id": user_id})


async def spendable(session: AsyncSession, user_id: str, now: datetime) -> int:
    """What a spend or a hold may take now: unexpired grants, less debt."""
    return int((await session.execute(text("SELECT tally_ledger_spendable(:user_id, :now)"),
                                      {"user_id": user_id, "now": now})).scalar_one())


@dataclass(frozen=True)
class GrantView:
    id: int
    category: str
    source: str
    amount: int
    remaining: int
    expires_at: datetime | None


@dataclass(frozen=True)
class BalanceView:
    balance: int  # credits owned, held ones included (negative: a debt from a reversal)
    available: int  # what a spend or a hold may take now
    held: int
    debt: int
    grants: list[GrantView]
    expiring_soon: list[tuple[int, datetime]]  # (amount, when), soonest first, within EXPIRING_SOON


async def balance_view(session: AsyncSession, user_id: str, now: datetime | None = None) -> BalanceView:
    """The wallet with its grants that still hold credits (an index range of this user's rows)."""
    when = now or utc_now()
    wallet = (await session.execute(select(WalletBalance.balance, WalletBalance.held, WalletBalance.debt)
                                    .where(WalletBalance.user_id == user_id))).first()
    if wallet is None:
        return BalanceView(0, 0, 0, 0, [], [])
    rows = (await session.scalars(select(CreditGrant).where(CreditGrant.user_id == user_id, CreditGrant.remaining > 0)
                                  .order_by(CreditGrant.priority, CreditGrant.expires_at.asc().nulls_last(),
                                            CreditGrant.id))).all()
    live = [g for g in rows if g.expires_at is None or g.expires_at > when]
    grants = [GrantView(g.id, g.category, g.source, g.amount, g.remaining, g.expires_at) for g in live]
    soon: dict[datetime, int] = {}
    for g in live:
        if g.expires_at is not None and g.expires_at <= when + EXPIRING_SOON:
            soon[g.expires_at] = soon.get(g.expires_at, 0) + g.remaining
    available = sum(g.remaining for g in live) - int(wallet.debt)
    return BalanceView(int(wallet.balance), available, int(wallet.held), int(wallet.debt), grants,
                       sorted(((amount, at) for at, amount in soon.items()), key=lambda x: x[1]))


# -- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransactionView:
    id: int
    kind: str
    reference: str
    description: str | None
    order_id: str | None
    amount: int
    balance_after: int | None
    entries: list[dict[str, Any]]
    created_at: datetime


async def list_transactions(session: AsyncSession, user_id: str, *, limit: int,
                            starting_after: int | None = None) -> tuple[list[TransactionView], bool]:
    """The user's ledger transactions, newest first, ``limit`` at a time after the cursor id."""
    query = select(LedgerTransaction).where(LedgerTransaction.user_id == user_id)
    if starting_after is not None:
        query = query.where(LedgerTransaction.id < starting_after)
    rows = list((await session.scalars(query.order_by(LedgerTransaction.id.desc()).limit(limit + 1))).all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return [], False
    wallet = await session.scalar(select(WalletBalance.account_id).where(WalletBalance.user_id == user_id))
    entries = (await session.execute(
        select(LedgerEntry).where(LedgerEntry.transaction_id.in_(bindparam("ids", expanding=True)),
                                  LedgerEntry.account_id == wallet).order_by(LedgerEntry.id),
        {"ids": [r.id for r in rows]})).scalars().all()
    by_tx: dict[int, list[LedgerEntry]] = {}
    for entry in entries:
        by_tx.setdefault(entry.transaction_id, []).append(entry)
    views = []
    for row in rows:
        mine = by_tx.get(row.id, [])
        views.append(TransactionView(
            id=row.id, kind=row.kind, reference=row.reference, description=row.description, order_id=row.order_id,
            amount=sum(e.amount for e in mine), balance_after=mine[-1].balance_after if mine else None,
            entries=[{"kind": e.kind, "amount": e.amount, "balance_after": e.balance_after, "grant_id": e.grant_id}
                     for e in mine],
            created_at=row.created_at))
    return views, has_more


# -- the dashboard's totals (a small table of counters: never a sum over the ledger) ----------------
async def fold_totals(session: AsyncSession) -> int:
    """Fold the movements' deltas into the counters (the worker's job); returns how many it folded."""
    return int((await session.execute(text("SELECT tally_ledger_fold_totals()"))).scalar_one())


MOVEMENTS = ("granted", "used", "expired", "reversed")


@dataclass(frozen=True)
class Outstanding:
    """Credits granted and not yet used, expired or taken back, per category (the liability to users), and
    the money customers paid for the paid ones still unused, per currency (minor units)."""

    paid: int
    promotional: int
    paid_money: dict[str, int] = field(default_factory=dict)


# The folded counters and the few seconds of deltas the worker has not folded yet. The fold keeps each day's
# row and an all-time row (day '-infinity'): all-time totals read a handful of rows, never every day.
_ALL_TIME = ("(SELECT category, movement, amount FROM credit_totals WHERE day = '-infinity' "
             "UNION ALL SELECT category, movement, amount FROM credit_total_deltas) AS totals")
_PER_DAY = ("(SELECT day, category, movement, amount FROM credit_totals WHERE day >= :since "
            "UNION ALL SELECT day, category, movement, amount FROM credit_total_deltas WHERE day >= :since) AS totals")


async def outstanding(session: AsyncSession) -> Outstanding:
    rows = (await session.execute(text(
        "SELECT category, sum(CASE movement WHEN 'granted' THEN amount ELSE -amount END) AS left_over "
        f"FROM {_ALL_TIME} GROUP BY category"))).all()
    by_category = {r.category: int(r.left_over) for r in rows}
    money = (await session.execute(text(
        "SELECT currency, round(sum(amount)) AS amount FROM (SELECT currency, amount FROM credit_money_totals "
        "UNION ALL SELECT currency, amount FROM credit_money_deltas) AS money GROUP BY currency "
        "ORDER BY currency"))).all()
    return Outstanding(by_category.get("paid", 0), by_category.get("promotional", 0),
                       {r.currency: int(r.amount) for r in money if r.amount})


async def totals(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Credits moved since the start, per (category, movement): what ``/metrics`` counts."""
    rows = (await session.execute(text(
        f"SELECT category, movement, sum(amount) AS amount FROM {_ALL_TIME} GROUP BY category, movement"))).all()
    return {(r.category, r.movement): int(r.amount) for r in rows}


async def daily_totals(session: AsyncSession, since: date) -> dict[date, dict[str, int]]:
    """Credits granted, used, expired and reversed per day since ``since`` (both categories together)."""
    rows = (await session.execute(text(
        f"SELECT day, movement, sum(amount) AS amount FROM {_PER_DAY} "
        "GROUP BY day, movement ORDER BY day"), {"since": since})).all()
    days: dict[date, dict[str, int]] = {}
    for row in rows:
        days.setdefault(row.day, dict.fromkeys(MOVEMENTS, 0))[row.movement] = int(row.amount)
    return days
