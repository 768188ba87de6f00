"""Moving credits: every movement is one ledger transaction with a unique reference whose entries sum to
zero; the wallet side carries ``balance_after`` and the wallet balance row changes in the same database
transaction through ``UPDATE … SET balance = balance + :delta … RETURNING`` (never read-modify-write).

Functions here take the caller's ``AsyncSession`` and never commit: a failure anywhere rolls back the
entries, the balance and whatever else the caller wrote (order status, invoice) together. The exception is
``spend``, which is one statement with nothing else to write beside it: it runs autocommitted, one round trip.

Refunds of coins already spent: ``claw_back_refund`` always takes back the refunded share of the pack in
full, even when the user has spent part of it. The wallet may then go below zero — *only* through a
refund; spending never can (``spend`` refuses with 409 ``insufficient_credits`` while the balance is
lower than the amount, negative included). The negative balance is the user's debt, visible in
``GET /v1/credits`` and in the clawback entry's ``balance_after``, and the next purchase pays it off
first. Taking back only what remains would let a user buy, spend, refund and keep what they spent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database, refuse_nul
from ..errors import Conflict, InsufficientCredits
from .models import (BONUSES, PURCHASES, REFUNDS, SPENDING, SYSTEM_ACCOUNTS, LedgerAccount, LedgerEntry,
                     LedgerTransaction, WalletBalance, wallet_code)

_system_ids: dict[str, dict[str, int]] = {}  # database URL → code → account id (rows never change)


@dataclass(frozen=True)
class Posting:
    """One side of a movement: ``amount`` > 0 credits ``account_id``, < 0 debits it."""

    account_id: int
    amount: int
    kind: str
    balance_after: int | None = None


@dataclass(frozen=True)
class Movement:
    """The result of a wallet movement: its ledger transaction and the wallet balance right after it."""

    transaction_id: int
    amount: int  # net change of the wallet
    balance: int
    created: bool  # False when the reference already existed (an idempotent replay)


class UnbalancedTransaction(ValueError):
    pass


# -- accounts -------------------------------------------------------------------------------------
async def system_account(session: AsyncSession, code: str) -> int:
    key = str(session.get_bind().url)
    ids = _system_ids.get(key)
    if ids is None or code not in ids:
        rows = await session.execute(select(LedgerAccount.code, LedgerAccount.id)
                                     .where(LedgerAccount.code.in_(SYSTEM_ACCOUNTS)))
        ids = _system_ids[key] = {c: i for c, i in rows.all()}
    return ids[code]


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
    await session.execute(insert(WalletBalance).values(user_id=user_id, account_id=account_id, balance=0)
                          .on_conflict_do_nothing(index_elements=["user_id"]))
    return int(account_id)  # type: ignore[arg-type]


_ADD = text("UPDATE wallet_balances SET balance = balance + :delta, updated_at = now() "
            "WHERE user_id = :user_id RETURNING balance")


async def get_balance(session: AsyncSession, user_id: str) -> int:
    balance = await session.scalar(select(WalletBalance.balance).where(WalletBalance.user_id == user_id))
    return int(balance or 0)


# -- transactions ---------------------------------------------------------------------------------
async def _open_transaction(session: AsyncSession, *, reference: str, kind: str, user_id: str | None,
                            order_id: str | None = None, description: str | None = None,
                            details: dict[str, Any] | None = None) -> int | None:
    """Insert the transaction header; None when ``reference`` exists (then nothing else must be written).
    A concurrent insert of the same reference waits here until the first one commits or rolls back."""
    return await session.scalar(
        insert(LedgerTransaction).values(reference=reference, kind=kind, user_id=user_id, order_id=order_id,
                                         description=description, details=details or {})
        .on_conflict_do_nothing(index_elements=["reference"]).returning(LedgerTransaction.id))


async def _write_entries(session: AsyncSession, transaction_id: int, postings: list[Posting]) -> None:
    if sum(p.amount for p in postings) != 0:
        # The deferred trigger would refuse the commit anyway; failing here names the culprit.
        raise UnbalancedTransaction(f"postings of transaction {transaction_id} sum to "
                                    f"{sum(p.amount for p in postings)}, not 0")
    await session.execute(insert(LedgerEntry), [
        {"transaction_id": transaction_id, "account_id": p.account_id, "amount": p.amount, "kind": p.kind,
         "balance_after": p.balance_after} for p in postings if p.amount != 0])


async def _existing(session: AsyncSession, reference: str, wallet_id: int) -> Movement:
    tx_id = await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.reference == reference))
    rows = (await session.execute(select(LedgerEntry.amount, LedgerEntry.balance_after)
                                  .where(LedgerEntry.transaction_id == tx_id, LedgerEntry.account_id == wallet_id)
                                  .order_by(LedgerEntry.id))).all()
    return Movement(int(tx_id), sum(r.amount for r in rows), int(rows[-1].balance_after) if rows else 0,  # type: ignore[arg-type]
                    created=False)


async def grant_purchase(session: AsyncSession, *, user_id: str, order_id: str, coins: int, bonus: int,
                         description: str, details: dict[str, Any] | None = None) -> Movement:
    """Credit a paid pack: coins from ``system:purchases`` and bonus coins from ``system:bonuses``,
    each wallet entry with its own ``balance_after``. Exactly once per order (reference
    ``order:{id}:purchase``); a second call returns the first movement."""
    reference = f"order:{order_id}:purchase"
    wallet = await ensure_wallet(session, user_id)
    tx_id = await _open_transaction(session, reference=reference, kind="purchase", user_id=user_id,
                                    order_id=order_id, description=description, details=details)
    if tx_id is None:
        return await _existing(session, reference, wallet)
    balance = int((await session.execute(_ADD, {"delta": coins + bonus, "user_id": user_id})).scalar_one())
    postings = [Posting(wallet, coins, "coins", balance - bonus),
                Posting(await system_account(session, PURCHASES), -coins, "coins")]
    if bonus:
        postings += [Posting(wallet, bonus, "bonus", balance),
                     Posting(await system_account(session, BONUSES), -bonus, "bonus")]
    await _write_entries(session, tx_id, postings)
    return Movement(tx_id, coins + bonus, balance, created=True)


# A spend is one statement, sent on an autocommitted connection: one round trip, and the wallet row is locked
# only from this UPDATE to the statement's own commit, with no client round trip in between (the hot user's
# spends per second are bounded by exactly that; bench/spend.py). The floor is checked by the UPDATE: under
# concurrent spends PostgreSQL re-evaluates its WHERE on the latest row version, so no two spends can pass on
# the same coins. Exactly once: the header's reference is unique with no ON CONFLICT, so a reused key fails
# the whole statement, the debit included (``UniqueViolation``, then the replay is looked up). No row from
# the UPDATE (too few coins, or no wallet at all): nothing is written.
_SPEND = """
    WITH wallet AS (
        UPDATE wallet_balances SET balance = balance - %(amount)s, updated_at = now()
        WHERE user_id = %(user_id)s AND balance >= %(amount)s
        RETURNING account_id, balance),
    tx AS (
        INSERT INTO ledger_transactions (reference, kind, user_id, description, details)
        SELECT %(reference)s, 'spend', %(user_id)s, %(reason)s, %(details)s::jsonb FROM wallet
        RETURNING id),
    entries AS (
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after)
        SELECT tx.id, wallet.account_id, -%(amount)s::bigint, 'spend', wallet.balance FROM tx, wallet
        UNION ALL
        SELECT tx.id, (SELECT id FROM ledger_accounts WHERE code = %(spending)s), %(amount)s::bigint, 'spend', NULL
        FROM tx, wallet)
    SELECT (SELECT id FROM tx), (SELECT balance FROM wallet)"""

_SPENT = """
    SELECT t.id, t.description, e.amount, e.balance_after FROM ledger_transactions t
    JOIN wallet_balances w ON w.user_id = t.user_id
    JOIN ledger_entries e ON e.transaction_id = t.id AND e.account_id = w.account_id
    WHERE t.reference = %s"""

_REFERENCE_TAKEN = "uq_ledger_transactions_reference"


async def spend(db: Database, *, user_id: str, amount: int, reason: str, idempotency_key: str) -> Movement:
    """Debit ``amount`` coins atomically, in a transaction of its own (the one service function that commits:
    it is a single statement, see ``_SPEND``). Idempotent by (user, ``idempotency_key``): a replay with the
    same amount and reason returns the original movement; with different ones it is a 409 ``conflict``.
    Refuses with 409 ``insufficient_credits`` when the balance is lower than ``amount`` (a user Tally has
    never credited has a balance of 0)."""
    if amount <= 0:
        raise ValueError(f"a spend takes a positive amount, not {amount}")
    refuse_nul(user_id, reason, idempotency_key)
    reference = f"spend:{user_id}:{idempotency_key}"
    params = {"amount": amount, "user_id": user_id, "reference": reference, "reason": reason,
              "details": json.dumps({"idempotency_key": idempotency_key}), "spending": SPENDING}
    # Survives a database restart: a retried spend that had committed finds its reference taken (a replay).
    return await db.run_direct(lambda conn: _spend_once(conn, params, reference, amount, reason))


async def _spend_once(conn: psycopg.AsyncConnection[Any], params: dict[str, Any], reference: str, amount: int,
                      reason: str) -> Movement:
    try:
        row = await (await conn.execute(_SPEND, params)).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != _REFERENCE_TAKEN:
            raise
        row = None
    if row is not None and row[0] is not None:
        return Movement(int(row[0]), -amount, int(row[1]), created=True)
    spent = await (await conn.execute(_SPENT, (reference,))).fetchone()
    if spent is None:
        balance = await (await conn.execute("SELECT balance FROM wallet_balances WHERE user_id = %s",
                                            (params["user_id"],))).fetchone()
        raise InsufficientCredits(f"The balance is lower than {amount}.", param="amount",
                                  balance=int(balance[0]) if balance else 0)
    tx_id, first_reason, moved, balance_after = spent
    if moved != -amount or first_reason != reason:
        raise Conflict("This idempotency_key was already used for a different spend.", param="idempotency_key")
    return Movement(int(tx_id), moved, int(balance_after), created=False)


async def claw_back_refund(session: AsyncSession, *, user_id: str, order_id: str, coins: int, refund_id: str,
                           details: dict[str, Any] | None = None) -> Movement:
    """Take back ``coins`` for one Stripe refund, exactly once (reference ``refund:{re_id}``). The wallet
    may go negative here when the coins were already spent (see the module docstring)."""
    if coins <= 0:  # a transaction always has entries, and an entry is never zero
        raise ValueError(f"a clawback takes at least one coin, not {coins}")
    reference = f"refund:{refund_id}"
    wallet = await ensure_wallet(session, user_id)
    tx_id = await _open_transaction(session, reference=reference, kind="refund", user_id=user_id,
                                    order_id=order_id, description="Refund", details=details)
    if tx_id is None:
        return await _existing(session, reference, wallet)
    balance = int((await session.execute(_ADD, {"delta": -coins, "user_id": user_id})).scalar_one())
    await _write_entries(session, tx_id, [Posting(wallet, -coins, "clawback", balance),
                                          Posting(await system_account(session, REFUNDS), coins, "clawback")])
    return Movement(tx_id, -coins, balance, created=True)


async def refund_references(session: AsyncSession, order_id: str) -> set[str]:
    """References of the refund clawbacks already recorded for an order."""
    rows = await session.scalars(select(LedgerTransaction.reference)
                                 .where(LedgerTransaction.order_id == order_id, LedgerTransaction.kind == "refund"))
    return set(rows.all())


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
            entries=[{"kind": e.kind, "amount": e.amount, "balance_after": e.balance_after} for e in mine],
            created_at=row.created_at))
    return views, has_more
