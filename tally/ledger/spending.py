"""Spends and holds: the app's own debits, each one round trip on an autocommitted connection.

Each call is one ``SELECT tally_ledger_…(…)`` (migration 0009): the function locks the wallet row, answers a
replay of its idempotency key, checks what the wallet can spend (unexpired grants, less debt; credits held
by open holds are out of their grants already, so a spend never takes them) and draws from the grants in the
order of ``tally.ledger.credits``, all before the statement's own commit. Two spends or holds of one user
therefore run one after the other on the wallet's row lock, and no two can take the same credits.

Holds: ``hold`` reserves credits (they leave their grants and are kept on the hold); ``capture`` spends up to
the held amount from exactly those grants and gives the rest back (what goes back to a grant that expired
meanwhile expires then, reference ``hold:{id}:expiry``); ``release`` gives everything back; the worker expires
holds not captured in time (``expire_holds``). A hold ends once: the function takes the hold's
row lock under the wallet's and refuses a hold that is no longer ``held`` (409 with its current state), and a
capture at or after ``expires_at`` loses to the expiry.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..db import Database, refuse_nul
from ..errors import Conflict, InsufficientCredits, InvalidRequest, NotFound
from . import references
from .posting import utc_now

DEFAULT_HOLD_SECONDS = 15 * 60
MAX_HOLD_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Spent:
    transaction_id: int
    amount: int  # credits debited
    balance: int  # balance right after
    available: int  # what the wallet can still spend
    replayed: bool


@dataclass(frozen=True)
class Hold:
    id: str
    user_id: str
    amount: int
    status: str  # held | captured | released | expired
    captured: int
    released: int
    reason: str | None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    transaction_id: int | None


_SPEND = "SELECT * FROM tally_ledger_spend(%s, %s, %s, %s, %s, %s)"


async def spend(db: Database, *, user_id: str, amount: int, reason: str, idempotency_key: str,
                now: datetime | None = None) -> Spent:
    """Debit ``amount`` credits once per (user, ``idempotency_key``): a replay with the same amount and reason
    answers the first spend; with different ones it is a 409 ``conflict``. 409 ``insufficient_credits`` when
    the wallet cannot spend ``amount`` (a user Tally has never credited has nothing)."""
    if amount <= 0:
        raise ValueError(f"a spend takes a positive amount, not {amount}")
    refuse_nul(user_id, reason, idempotency_key)
    params = (user_id, amount, references.spend(user_id, idempotency_key), reason,
              json.dumps({"idempotency_key": idempotency_key}), now or utc_now())

    async def once(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_SPEND, params)
            row = await cur.fetchone()
            assert row is not None
            return row

    # Safe to run again after a dropped connection: a spend that had committed is then found as a replay.
    row = await db.run_direct(once)
    return spent_from_row(row, amount=amount, reason=reason)


def spent_from_row(row: dict[str, Any], *, amount: int, reason: str) -> Spent:
    """The answer to a spend from ``tally_ledger_spend``'s row (also used by group commits of spends)."""
    if row["outcome"] == "insufficient":
        raise InsufficientCredits(f"The spendable balance is lower than {amount}.", param="amount",
                                  balance=int(row["balance"] or 0), available=int(row["available"] or 0))
    if row["outcome"] == "replay" and (int(row["moved"] or 0) != -amount or row["reason"] != reason):
        raise Conflict("This idempotency_key was already used for a different spend.", param="idempotency_key")
    return Spent(int(row["transaction_id"]), amount, int(row["balance"]), int(row["available"]),
                 replayed=row["outcome"] == "replay")


def hold_expiry(now: datetime, expires_in_seconds: int | None) -> datetime:
    seconds = DEFAULT_HOLD_SECONDS if expires_in_seconds is None else expires_in_seconds
    if not 1 <= seconds <= MAX_HOLD_SECONDS:
        raise InvalidRequest(f"expires_in_seconds must be from 1 to {MAX_HOLD_SECONDS}.", param="expires_in_seconds")
    return now + timedelta(seconds=seconds)


_HOLD = "SELECT * FROM tally_ledger_hold(%s, %s, %s, %s, %s, %s, %s)"
_READ_HOLD = """
    SELECT h.*, (SELECT tally_ledger_spendable(h.user_id, %s)) AS available
    FROM credit_holds h WHERE h.id = %s"""


async def hold(db: Database, *, user_id: str, amount: int, idempotency_key: str, reason: str | None = None,
               expires_in_seconds: int | None = None, now: datetime | None = None) -> tuple[Hold, int, bool]:
    """Reserve ``amount`` credits: the hold, what the wallet can still spend, and whether this was a replay.
    Idempotent by (user, key) like spends; 409 ``insufficient_credits`` when the wallet cannot spend it."""
    if amount <= 0:
        raise ValueError(f"a hold takes a positive amount, not {amount}")
    refuse_nul(user_id, reason, idempotency_key)
    when = now or utc_now()
    expires_at = hold_expiry(when, expires_in_seconds)
    hold_id = "hold_" + secrets.token_urlsafe(18)

    async def once(conn: psycopg.AsyncConnection[Any]) -> tuple[Hold, int, bool]:
        row = await (await conn.execute(_HOLD, (hold_id, user_id, amount, idempotency_key, reason, expires_at,
                                                when))).fetchone()
        assert row is not None
        outcome, found_id, available = row
        if outcome == "insufficient":
            raise InsufficientCredits(f"The spendable balance is lower than {amount}.", param="amount",
                                      available=int(available or 0))
        if outcome == "conflict":
            raise Conflict("This idempotency_key was already used for a different hold.", param="idempotency_key")
        found, _ = await _read(conn, found_id, when)
        assert found is not None
        return found, int(available), outcome == "replay"

    return await db.run_direct(once)


_FINISH = "SELECT * FROM tally_ledger_finish_hold(%s, %s, %s, %s, %s, %s)"


async def capture(db: Database, *, user_id: str, hold_id: str, amount: int | None = None,
                  now: datetime | None = None) -> tuple[Hold, int, int]:
    """Spend ``amount`` (default: all) of an open hold and release the rest: the hold, the balance after and
    what the wallet can spend. 409 with the hold's state when it is no longer held or its time is up."""
    when = now or utc_now()
    async with db.direct() as conn:
        current, _ = await _read(conn, hold_id, when)
        if current is None or current.user_id != user_id:
            raise NotFound("No such hold.", param="hold_id")
        take = current.amount if amount is None else amount
        if not 1 <= take <= current.amount:
            raise InvalidRequest(f"amount must be from 1 to the held {current.amount}.", param="amount")
        row = await (await conn.execute(_FINISH, (hold_id, "captured", take, references.hold_capture(hold_id),
                                                  references.hold_expiry(hold_id), when))).fetchone()
        assert row is not None
        finished, available = await _read(conn, hold_id, when)
        assert finished is not None
        if row[0] != "captured":
            raise not_open(finished, available)
        return finished, int(row[2]), available


async def release(db: Database, *, user_id: str, hold_id: str, now: datetime | None = None,
                  status: str = "released") -> tuple[Hold, int]:
    """Give an open hold's credits back (``status`` ``expired`` when the worker does it for a hold whose time is
    up): the hold and what the wallet can spend. 409 with the hold's state when it is no longer held."""
    when = now or utc_now()
    async with db.direct() as conn:
        current, _ = await _read(conn, hold_id, when)
        if current is None or current.user_id != user_id:
            raise NotFound("No such hold.", param="hold_id")
        row = await (await conn.execute(_FINISH, (hold_id, status, 0, None, references.hold_expiry(hold_id),
                                                  when))).fetchone()
        assert row is not None
        finished, available = await _read(conn, hold_id, when)
        assert finished is not None
        if row[0] != status:
            raise not_open(finished, available)
        return finished, available


async def get_hold(db: Database, *, user_id: str, hold_id: str, now: datetime | None = None) -> tuple[Hold, int]:
    async with db.direct() as conn:
        found, available = await _read(conn, hold_id, now or utc_now())
    if found is None or found.user_id != user_id:
        raise NotFound("No such hold.", param="hold_id")
    return found, available


_DUE_HOLDS = "SELECT id, user_id FROM credit_holds WHERE status = 'held' AND expires_at <= %s ORDER BY expires_at LIMIT %s"


async def expire_holds(db: Database, *, now: datetime | None = None, limit: int = 500) -> int:
    """Release the holds whose time is up (the worker's job); returns how many it expired. A capture racing
    with it is decided by the hold's row lock: one of them ends the hold, the other finds it ended."""
    when = now or utc_now()
    async with db.direct() as conn:
        due = await (await conn.execute(_DUE_HOLDS, (when, limit))).fetchall()
        expired = 0
        for hold_id, _user in due:
            row = await (await conn.execute(_FINISH, (hold_id, "expired", 0, None, references.hold_expiry(hold_id),
                                                      when))).fetchone()
            expired += bool(row and row[0] == "expired")
    return expired


async def _read(conn: psycopg.AsyncConnection[Any], hold_id: str, now: datetime) -> tuple[Hold | None, int]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_READ_HOLD, (now, hold_id))
        row = await cur.fetchone()
    if row is None:
        return None, 0
    return hold_from_row(row), int(row["available"])


def hold_from_row(row: dict[str, Any]) -> Hold:
    """A ``credit_holds`` row as a Hold (also used by group commits of captures)."""
    captured = int(row["captured"])
    released = 0 if row["status"] == "held" else int(row["amount"]) - captured
    return Hold(id=row["id"], user_id=row["user_id"], amount=int(row["amount"]), status=row["status"],
                captured=captured, released=released, reason=row["reason"], created_at=row["created_at"],
                expires_at=row["expires_at"], finished_at=row["finished_at"], transaction_id=row["transaction_id"])


def not_open(found: Hold, available: int) -> Conflict:
    return Conflict(f"This hold is {found.status}; it can no longer change.", param="hold_id",
                    hold=hold_body(found, available))


def hold_body(found: Hold, available: int) -> dict[str, Any]:
    return {"id": found.id, "object": "credit_hold", "amount": found.amount, "status": found.status,
            "captured": found.captured, "released": found.released, "reason": found.reason,
            "created_at": found.created_at.isoformat(), "expires_at": found.expires_at.isoformat(),
            "available": available}
