"""Expiry: what is left of a grant at its ``expires_at`` leaves the wallet as an ``expiry`` transaction (reference
``grant:{id}:expiry``, so exactly once), to ``system:expired``.

A subscription's allowance may roll over: when grants of a subscription whose plan has a ``rollover_cap`` end
with its period, at most ``rollover_cap`` of what is left of them carries into a new grant that lasts until the
next period's end (one ``rollover`` transaction per subscription and period end; the wallet moves nothing,
the credits change grant), and the rest expires. Nothing carries over for a subscription that no longer gives
access.

Two things expire grants, both under the wallet's row lock:
- the worker, every few seconds, for grants whose ``expires_at`` has passed (``expire_due``);
- a subscription's renewal, for the grants of the period it closes (``close_subscription_period``), so that a
  period ends with its renewal even when Stripe's time is a test clock's, ahead of the wall clock.
Credits an open hold took from a grant stay with the hold (its work may still be captured); what the hold
gives back to a grant that has expired meanwhile expires when the hold ends (``tally.ledger.spending``).
"""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from . import references
from .credits import SUBSCRIPTION_PRIORITY
from .models import EXPIRED, CreditGrant
from .posting import Credit, Debit, post, utc_now
from .references import Kind

log = logging.getLogger("tally.ledger")

_DUE_USERS = text("""
    SELECT DISTINCT user_id FROM (
        SELECT user_id FROM credit_grants WHERE remaining > 0 AND expires_at <= :now ORDER BY expires_at LIMIT :limit
    ) due""")
_LOCK_WALLET = text("SELECT balance FROM wallet_balances WHERE user_id = :user_id FOR UPDATE")
_SUBSCRIPTION = text("SELECT status IN ('active', 'trialing', 'past_due') AS has_access, current_period_end "
                     "FROM subscriptions WHERE id = :id")


async def expire_due(db: Database, *, now: datetime | None = None, limit: int = 200) -> int:
    """Expire every grant whose time has come (the worker's job), a wallet per transaction; returns how many
    grants expired."""
    when = now or utc_now()
    async with db.transaction() as session:
        users = list((await session.scalars(_DUE_USERS, {"now": when, "limit": limit})).all())
    expired = 0
    for user_id in users:
        async with db.transaction() as session:
            expired += await _expire(session, user_id, when, CreditGrant.expires_at <= when)
    return expired


async def close_subscription_period(session: AsyncSession, *, user_id: str, subscription_id: str,
                                    period_end: int, next_period_end: int | None) -> int:
    """At a renewal: the grants of ``subscription_id`` that end by ``period_end`` (Stripe's time) roll over or
    expire now, before the new period's credits are granted."""
    ends = datetime.fromtimestamp(period_end, UTC)
    return await _expire(session, user_id, ends,
                         (CreditGrant.subscription_id == subscription_id) & (CreditGrant.expires_at <= ends),
                         next_period_end=next_period_end, renewing=True)


async def _expire(session: AsyncSession, user_id: str, now: datetime, condition: object, *,
                  next_period_end: int | None = None, renewing: bool = False) -> int:
    await session.execute(_LOCK_WALLET, {"user_id": user_id})
    due = list((await session.scalars(
        select(CreditGrant).where(CreditGrant.user_id == user_id, CreditGrant.remaining > 0, condition)  # type: ignore[arg-type]
        .order_by(CreditGrant.id).with_for_update())).all())
    if not due:
        return 0
    await _roll_over(session, user_id, due, now, next_period_end=next_period_end, renewing=renewing)
    expired = 0
    for grant in due:
        await session.refresh(grant, ["remaining"])
        if grant.remaining > 0:
            await post(session, reference=references.grant_expiry(grant.id), kind=Kind.EXPIRY, user_id=user_id,
                       description=f"Expired: {grant.source} credits", details={"grant_id": grant.id},
                       steps=[Debit(grant.remaining, "expiry", EXPIRED, [grant.id], only_first=True)], now=now)
            expired += 1
    return expired


async def _roll_over(session: AsyncSession, user_id: str, due: list[CreditGrant], now: datetime, *,
                     next_period_end: int | None, renewing: bool) -> None:
    for (subscription_id, ends), grants in _periods_with_rollover(due).items():
        found = (await session.execute(_SUBSCRIPTION, {"id": subscription_id})).first()
        if not renewing and (found is None or not found.has_access):
            continue
        period_end = int(ends.timestamp())
        upcoming = next_period_end or (found.current_period_end if found else None)
        new_end = upcoming if upcoming and upcoming > period_end else _one_period_later(grants[0], period_end)
        cap = max(g.rollover_cap or 0 for g in grants)
        carry = min(cap, sum(g.remaining for g in grants))
        if carry <= 0:
            continue
        await post(session, reference=references.rollover(subscription_id, period_end), kind=Kind.ROLLOVER,
                   user_id=user_id, description="Unused subscription credits carried over",
                   details={"subscription_id": subscription_id, "period_end": period_end, "cap": cap},
                   steps=[Debit(carry, "rollover", None, [g.id for g in grants], only_first=True),
                          Credit(carry, "rollover", None, "rollover", "paid", SUBSCRIPTION_PRIORITY,
                                 datetime.fromtimestamp(new_end, UTC), subscription_id, cap)], now=now)


def _periods_with_rollover(due: list[CreditGrant]) -> dict[tuple[str, datetime], list[CreditGrant]]:
    """The lapsing grants that may carry over, by the subscription period they belong to."""
    periods: dict[tuple[str, datetime], list[CreditGrant]] = {}
    for grant in due:
        if grant.subscription_id and grant.rollover_cap and grant.expires_at is not None:
            periods.setdefault((grant.subscription_id, grant.expires_at), []).append(grant)
    return periods


def _one_period_later(grant: CreditGrant, period_end: int) -> int:
    """The end of the period after ``period_end`` when Stripe has not said yet: as long as the grant's own
    period, counted in calendar months when it looks like one (28–31 days) or a year."""
    length = period_end - int(grant.effective_at.timestamp())
    ends = datetime.fromtimestamp(period_end, UTC)
    if 27 * 86400 <= length <= 32 * 86400:
        months = ends.year * 12 + ends.month  # the next month, 0-based
        year, month = divmod(months, 12)
        day = min(ends.day, calendar.monthrange(year, month + 1)[1])
        return int(ends.replace(year=year, month=month + 1, day=day).timestamp())
    return int((ends + timedelta(seconds=max(length, 86400))).timestamp())
