"""Group commit for spends, holds and captures: the requests that arrive together share one statement and one
commit (captures: the statement and a read of the holds after it, pipelined in the same round trip).

A spend, a hold or a capture is one call of its PostgreSQL function (``tally.ledger.spending``), one commit
each. Under load the commits queue: every one waits for its own WAL flush, and every one pays a network round
trip and a connection checkout. Here a request joins the list of those waiting, and each of at most
``max_flushes`` flushes in flight takes the whole list (up to ``max_group``) as one statement: the function
called once per request, in one transaction, with one commit. Each request keeps everything of its own: its
ledger transaction with its reference and entries (or its hold), and its own answer (its row of the statement's
result: spent, replay, insufficient, ...). With nothing in flight a request is sent at once, so a lone one waits
for nothing; under load the next statement carries all that arrived meanwhile instead of each request queueing
for a connection of its own (the pattern of the webhook receiver, ``tally.webhooks.inbox.InboxReceiver``).

Ordering, and why nothing deadlocks: a group's rows are sorted by user id (a stable sort: one user's requests
keep their arrival order) and its functions are called in that order; spends and captures first lock all the
group's wallets in user order (``_LOCK_WALLETS``, in the same transaction and pipeline, so still one round
trip), because their functions write more than the wallet. Every group thus takes its wallet locks in one global
order, so two concurrent groups can wait on each other but never in a cycle. Two requests with the same
idempotency key in one statement: the second call sees the first's transaction (same database transaction) and
answers as a replay, as it would a moment later.

Failures stay their own: the functions answer an insufficient balance or a replay with a row, never an
error, so one short wallet does not fail the others. If a statement fails anyway (an unexpected error in
one request), its requests are run again one by one, each in its own statement, so that the error reaches
only the request it belongs to. A connection killed by a database restart is retried once on a fresh one
(``Database.run_direct``): safe, because a request that had committed is then found as a replay.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..db import Database, refuse_nul
from ..errors import Conflict, InsufficientCredits, InvalidRequest, NotFound
from ..group_commit import GroupCommit
from . import references, spending
from .posting import utc_now

Row = dict[str, Any]


# -- spends and holds -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpendRequest:
    user_id: str
    amount: int
    reference: str
    reason: str
    idempotency_key: str
    at: datetime


# One ``tally_ledger_spend`` per row, called in the rows' order (a nested loop over the arrays), each seeing
# what the previous ones wrote; the answers come back in the same order.
_SPENDS = """
    SELECT r.outcome, r.transaction_id, r.balance, r.available, r.moved, r.reason
    FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
         WITH ORDINALITY AS q(user_id, amount, reference, reason, idempotency_key, at, n)
    CROSS JOIN LATERAL tally_ledger_spend(q.user_id, q.amount, q.reference, q.reason,
                                          jsonb_build_object('idempotency_key', q.idempotency_key), q.at) AS r
    ORDER BY q.n"""


async def _run_spends(conn: psycopg.AsyncConnection[Any], items: list[SpendRequest]) -> list[Row]:
    users, ats = [i.user_id for i in items], [i.at for i in items]
    async with conn.pipeline(), conn.cursor(row_factory=dict_row) as cur:
        async with conn.transaction():  # one round trip still: sent in one pipeline
            await _lock_first(conn, users)
            await cur.execute(_SPENDS, (users, [i.amount for i in items], [i.reference for i in items],
                                        [i.reason for i in items], [i.idempotency_key for i in items], ats))
        return await cur.fetchall()


# Why a group locks its wallets first, in user order: each function locks its own wallet row as it runs, so
# two statements spending for the same users in different orders could each hold what the other waits for.
_LOCK_WALLETS = "SELECT 1 FROM wallet_balances WHERE user_id = ANY(%s) ORDER BY user_id FOR UPDATE"


async def _lock_first(conn: psycopg.AsyncConnection[Any], users: list[str]) -> None:
    await conn.execute(_LOCK_WALLETS, (users,))


@dataclass(frozen=True)
class HoldRequest:
    hold_id: str
    user_id: str
    amount: int
    idempotency_key: str
    reason: str | None
    expires_at: datetime
    at: datetime


_HOLDS = """
    SELECT r.outcome, r.hold_id, r.available
    FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[],
                %s::timestamptz[]) WITH ORDINALITY AS q(hold_id, user_id, amount, idempotency_key, reason,
                                                        expires_at, at, n)
    CROSS JOIN LATERAL tally_ledger_hold(q.hold_id, q.user_id, q.amount, q.idempotency_key, q.reason, q.expires_at,
                                         q.at) AS r
    ORDER BY q.n"""


async def _run_holds(conn: psycopg.AsyncConnection[Any], items: list[HoldRequest]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_HOLDS, ([i.hold_id for i in items], [i.user_id for i in items],
                                   [i.amount for i in items], [i.idempotency_key for i in items],
                                   [i.reason for i in items], [i.expires_at for i in items], [i.at for i in items]))
        return await cur.fetchall()


@dataclass(frozen=True)
class CaptureRequest:
    hold_id: str
    user_id: str
    amount: int | None  # None: all of the hold
    reference: str
    at: datetime


# One ``tally_ledger_finish_hold`` per row, in the rows' order (the derived table, kept apart by OFFSET 0, is
# scanned in the arrays' order). A hold that is not the caller's, or an amount outside 1..held, is given no id:
# the function then finds nothing and changes nothing, and the read below tells which refusal it is. Who owns a
# hold and how much it holds never change, so the statement's snapshot is good enough to check them.
_CAPTURES = """
    SELECT f.outcome, f.transaction_id, f.balance
    FROM (SELECT q.*, (SELECT c.amount FROM credit_holds c WHERE c.id = q.hold_id AND c.user_id = q.user_id) AS held
          FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[])
               WITH ORDINALITY AS q(hold_id, user_id, amount, reference, expiry_reference, at, n)
          OFFSET 0) q
    CROSS JOIN LATERAL tally_ledger_finish_hold(
        CASE WHEN coalesce(q.amount, q.held) BETWEEN 1 AND q.held THEN q.hold_id END, 'captured',
        coalesce(q.amount, q.held), q.reference, q.expiry_reference, q.at) AS f
    ORDER BY q.n"""
# Sent in the same pipeline (the same round trip): each hold as it is now, and what its wallet can spend.
_CAPTURED = """
    SELECT h.*, tally_ledger_spendable(q.user_id, q.at) AS available
    FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) WITH ORDINALITY AS q(hold_id, user_id, at, n)
    LEFT JOIN credit_holds h ON h.id = q.hold_id AND h.user_id = q.user_id
    ORDER BY q.n"""


async def _run_captures(conn: psycopg.AsyncConnection[Any], items: list[CaptureRequest]) -> list[Row]:
    ids, users, ats = [i.hold_id for i in items], [i.user_id for i in items], [i.at for i in items]
    async with conn.pipeline(), conn.cursor(row_factory=dict_row) as finish, \
            conn.cursor(row_factory=dict_row) as read:
        async with conn.transaction():
            await _lock_first(conn, users)
            await finish.execute(_CAPTURES, (ids, users, [i.amount for i in items], [i.reference for i in items],
                                             [references.hold_expiry(i) for i in ids], ats))
            await read.execute(_CAPTURED, (ids, users, ats))
        finished, holds = await finish.fetchall(), await read.fetchall()
    return [{"finish": f, "hold": h} for f, h in zip(finished, holds, strict=True)]


class LedgerGroups:
    """One process's group committers, one per kind of movement (a statement calls one function)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.spends: GroupCommit[SpendRequest, Row] = GroupCommit(db, _run_spends, order=attrgetter("user_id"),
                                                                  name="spends")
        self.holds: GroupCommit[HoldRequest, Row] = GroupCommit(db, _run_holds, order=attrgetter("user_id"),
                                                                name="holds")
        self.captures: GroupCommit[CaptureRequest, Row] = GroupCommit(db, _run_captures,
                                                                      order=attrgetter("user_id"), name="captures")


def groups_of(state: Any) -> LedgerGroups:
    """The app's group committers (``request.app.state``), made on first use."""
    groups: LedgerGroups | None = getattr(state, "ledger_groups", None)
    if groups is None:
        groups = state.ledger_groups = LedgerGroups(state.db)
    return groups


async def spend(groups: LedgerGroups, *, user_id: str, amount: int, reason: str, idempotency_key: str,
                now: datetime | None = None) -> spending.Spent:
    """``spending.spend`` (same rules, same answers), sharing a statement with the spends arriving with it."""
    if amount <= 0:
        raise ValueError(f"a spend takes a positive amount, not {amount}")
    refuse_nul(user_id, reason, idempotency_key)
    row = await groups.spends.submit(SpendRequest(user_id, amount, references.spend(user_id, idempotency_key),
                                                  reason, idempotency_key, now or utc_now()))
    return spending.spent_from_row(row, amount=amount, reason=reason)


async def hold(groups: LedgerGroups, *, user_id: str, amount: int, idempotency_key: str, reason: str | None = None,
               expires_in_seconds: int | None = None,
               now: datetime | None = None) -> tuple[spending.Hold, int, bool]:
    """``spending.hold`` (same rules, same answers), sharing a statement with the holds arriving with it. A new
    hold is answered from what the request and its row say; a replay reads the hold as it is now (one more
    round trip, for a retry only)."""
    if amount <= 0:
        raise ValueError(f"a hold takes a positive amount, not {amount}")
    refuse_nul(user_id, reason, idempotency_key)
    when = now or utc_now()
    request = HoldRequest("hold_" + secrets.token_urlsafe(18), user_id, amount, idempotency_key, reason,
                          spending.hold_expiry(when, expires_in_seconds), when)
    row = await groups.holds.submit(request)
    if row["outcome"] == "insufficient":
        raise InsufficientCredits(f"The spendable balance is lower than {amount}.", param="amount",
                                  available=int(row["available"] or 0))
    if row["outcome"] == "conflict":
        raise Conflict("This idempotency_key was already used for a different hold.", param="idempotency_key")
    if row["outcome"] == "replay":
        found, available = await spending.get_hold(groups.db, user_id=user_id, hold_id=row["hold_id"], now=when)
        return found, available, True
    return (spending.Hold(id=request.hold_id, user_id=user_id, amount=amount, status="held", captured=0, released=0,
                          reason=reason, created_at=when, expires_at=request.expires_at, finished_at=None,
                          transaction_id=None), int(row["available"]), False)


async def capture(groups: LedgerGroups, *, user_id: str, hold_id: str, amount: int | None = None,
                  now: datetime | None = None) -> tuple[spending.Hold, int, int]:
    """``spending.capture`` (same rules, same answers: the hold, the balance after, what the wallet can spend),
    one round trip shared with the captures arriving with it."""
    refuse_nul(user_id, hold_id)
    row = await groups.captures.submit(CaptureRequest(hold_id, user_id, amount, references.hold_capture(hold_id),
                                                      now or utc_now()))
    finish, found = row["finish"], row["hold"]
    if found["id"] is None:
        raise NotFound("No such hold.", param="hold_id")
    hold, available = spending.hold_from_row(found), int(found["available"])
    if finish["outcome"] == "not_found":  # given no id: the amount was refused
        raise InvalidRequest(f"amount must be from 1 to the held {hold.amount}.", param="amount")
    if finish["outcome"] != "captured":
        raise spending.not_open(hold, available)
    return hold, int(finish["balance"]), available
