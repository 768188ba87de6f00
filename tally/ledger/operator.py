"""The operator's own movements of a user's credits: a grant (paid or promotional, optionally expiring) and an
adjustment up or down, each with the reason the user sees in their transactions. The admin API
(``operator_routes``) and the ``tally credits`` commands (``cli``) both come here.

Exactly once per key: the caller's idempotency key, or a fresh one when it gives none (then a retry is a new
movement). A key used again with another amount, category or reason is refused (409), as spends are, rather
than answering the first movement as if it were the one asked for.

The user is created when Tally does not know them yet, as on any first call that writes: user ids are the app's,
and an operator may credit someone before their first visit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.service import Principal
from ..customers.service import ensure_user
from ..errors import Conflict, InvalidRequest
from . import credits, references
from .models import CreditGrant, LedgerTransaction
from .posting import Movement, utc_now
from .service import balance_view

Category = Literal["paid", "promotional"]
CATEGORIES: tuple[Category, ...] = ("paid", "promotional")


@dataclass(frozen=True)
class OperatorMovement:
    transaction_id: int
    user_id: str
    amount: int  # the wallet's change: + granted, − taken
    category: Category | None  # of the grant made; None for an adjustment down
    expires_at: datetime | None
    reason: str
    key: str
    balance: int
    available: int
    replayed: bool


async def grant(session: AsyncSession, *, user_id: str, amount: int, category: Category, reason: str,
                key: str | None = None, expires_at: datetime | None = None) -> OperatorMovement:
    """Give ``amount`` credits: a promotional grant, or a paid one (an adjustment up), expiring at
    ``expires_at`` (never when None)."""
    if amount <= 0:
        raise InvalidRequest("A grant gives at least one credit.", param="amount")
    if category not in CATEGORIES:
        raise InvalidRequest("category is paid or promotional.", param="category")
    _require_future(expires_at)
    key = key or _fresh_key()
    await _refuse_key_used_by(session, references.promotion(user_id, key) if category == "paid"
                              else references.adjustment(user_id, key), key)
    await ensure_user(session, Principal(user_id))
    if category == "promotional":
        moved = await credits.grant_promotion(session, user_id=user_id, amount=amount, reason=reason, key=key,
                                              expires_at=expires_at)
    else:
        moved = await credits.adjust(session, user_id=user_id, delta=amount, reason=reason, key=key,
                                     expires_at=expires_at)
    return await _answer(session, moved, user_id=user_id, amount=amount, category=category, reason=reason, key=key,
                         expires_at=expires_at)


async def adjust(session: AsyncSession, *, user_id: str, delta: int, reason: str,
                 key: str | None = None) -> OperatorMovement:
    """Correct a balance: ``delta > 0`` is a paid grant that never expires; ``delta < 0`` takes credits in the
    normal draw order and, like a spend, never more than the wallet can spend (409 insufficient_credits)."""
    if delta == 0:
        raise InvalidRequest("An adjustment moves at least one credit, up or down.", param="amount")
    key = key or _fresh_key()
    await _refuse_key_used_by(session, references.promotion(user_id, key), key)
    await ensure_user(session, Principal(user_id))
    moved = await credits.adjust(session, user_id=user_id, delta=delta, reason=reason, key=key)
    return await _answer(session, moved, user_id=user_id, amount=delta, category="paid" if delta > 0 else None,
                         reason=reason, key=key, expires_at=None)


def _fresh_key() -> str:
    return f"operator-{uuid.uuid4()}"


def _require_future(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise InvalidRequest("expires_at needs a time zone, e.g. 2027-01-31T00:00:00Z.", param="expires_at")
    if expires_at <= utc_now():
        raise InvalidRequest("expires_at is in the past: the credits would lapse at once.", param="expires_at")


async def _refuse_key_used_by(session: AsyncSession, other_reference: str, key: str) -> None:
    """Promotional grants and adjustments (paid grants among them) have references of their own: a key already
    used by the other kind is refused, so that one key stays one movement. (Two first uses of one key racing as
    different kinds could both pass; a key is one caller's retry of one request, so they do not race.)"""
    if await session.scalar(select(LedgerTransaction.id)
                            .where(LedgerTransaction.reference == other_reference)) is not None:
        raise Conflict(f"The idempotency key {key!r} was already used for a different movement of this user's "
                       "credits.", param="idempotency_key")


async def _answer(session: AsyncSession, moved: Movement, *, user_id: str, amount: int, category: Category | None,
                  reason: str, key: str, expires_at: datetime | None) -> OperatorMovement:
    replayed = not moved.created
    if replayed:
        first = await session.scalar(select(LedgerTransaction.description)
                                     .where(LedgerTransaction.id == moved.transaction_id))
        first_expiry = (await session.scalar(select(CreditGrant.expires_at)
                                             .where(CreditGrant.id == moved.grant_ids[0]))
                        if moved.grant_ids else None)
        if moved.amount != amount or first != reason or first_expiry != expires_at:
            raise Conflict(f"The idempotency key {key!r} was already used with a different amount, reason or "
                           f"expiry ({moved.amount:+d}, {first!r}).", param="idempotency_key")
    view = await balance_view(session, user_id)
    return OperatorMovement(transaction_id=moved.transaction_id, user_id=user_id, amount=moved.amount,
                            category=category, expires_at=expires_at, reason=reason, key=key, balance=view.balance,
                            available=view.available, replayed=replayed)
