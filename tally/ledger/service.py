"""Moving credits: every movement is one ledger transaction with a unique reference whose entries sum to
zero; the wallet side carries ``balance_after`` and the wallet balance row changes in the same database
transaction through ``UPDATE … SET balance = balance + :delta … RETURNING`` (never read-modify-write).

Functions here take the caller's ``AsyncSession`` and never commit: a failure anywhere rolls back the
entries, the balance and whatever else the caller wrote (order status, invoice) together.

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

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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


# One statement, one round trip: the header (its unique reference makes the spend happen once), the
# balance change and both entries. The floor is checked by the UPDATE itself: under concurrent spends
# PostgreSQL re-evaluates the WHERE clause on the locked, latest row version, so no two spends can both
# pass on the same coins. The wallet row
# stays locked from the UPDATE to the commit, so the fewer round trips in between, the more spends of one
# hot user go through per second (bench/spend.py). No header → the reference exists (a replay); a header
# but no balance → too few coins (or no wallet yet: nothing to spend), and the caller rolls back.
_SPEND = text("""
    WITH tx AS (
        INSERT INTO ledger_transactions (reference, kind, user_id, description, details)
        VALUES (:reference, 'spend', :user_id, :reason, CAST(:details AS jsonb))
        ON CONFLICT (reference) DO NOTHING
        RETURNING id),
    wallet AS (
        UPDATE wallet_balances SET balance = balance - :amount, updated_at = now()
        WHERE user_id = :user_id AND balance >= :amount AND EXISTS (SELECT 1 FROM tx)
        RETURNING account_id, balance),
    entries AS (
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after)
        SELECT tx.id, wallet.account_id, -CAST(:amount AS bigint), 'spend', wallet.balance FROM tx, wallet
        UNION ALL
        SELECT tx.id, :spending, CAST(:amount AS bigint), 'spend', NULL FROM tx, wallet)
    SELECT (SELECT id FROM tx) AS transaction_id, (SELECT balance FROM wallet) AS balance""")


async def spend(session: AsyncSession, *, user_id: str, amount: int, reason: str, idempotency_key: str) -> Movement:
    """Debit ``amount`` coins atomically. Idempotent by (user, ``idempotency_key``): a replay with the same
    amount and reason returns the original movement; with different ones it is a 409 ``conflict``.
    Refuses with 409 ``insufficient_credits`` when the balance is lower than ``amount``."""
    reference = f"spend:{user_id}:{idempotency_key}"
    if amount <= 0:
        raise ValueError(f"a spend takes a positive amount, not {amount}")
    row = (await session.execute(_SPEND, {
        "reference": reference, "user_id": user_id, "reason": reason, "amount": amount,
        "details": json.dumps({"idempotency_key": idempotency_key}),
        "spending": await system_account(session, SPENDING)})).one()
    if row.transaction_id is None:
        previous = await _existing(session, reference, await ensure_wallet(session, user_id))
        first = await session.scalar(select(LedgerTransaction.description)
                                     .where(LedgerTransaction.reference == reference))
        if previous.amount != -amount or first != reason:
            raise Conflict("This idempotency_key was already used for a different spend.",
                           param="idempotency_key")
        return previous
    if row.balance is None:
        # The caller's transaction rolls back, taking the transaction header with it.
        raise InsufficientCredits(f"The balance is lower than {amount}.", param="amount",
                                  balance=await get_balance(session, user_id))
    return Movement(int(row.transaction_id), -amount, int(row.balance), created=True)


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
