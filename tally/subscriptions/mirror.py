"""Keeping the ``subscriptions`` mirror in step with Stripe.

Every writer (webhook handlers and API routes alike) takes the mirror row's lock *before* asking Stripe for
the subscription and writes what Stripe answered, so writers are serialised and each writes a state at least
as new as the previous one: a late or replayed ``customer.subscription.updated`` can never put an older state
back, whatever its payload says (the payload is never read, only the id).

A plan change waiting for the period end lives in the subscription's schedule (``schedules``), whoever made it
(Tally's API or the billing portal): the mirror reads it from there as ``pending_*``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..customers.models import User
from ..db import database_of
from ..stripe_gateway import InvalidRequestError, StripeGateway, is_missing, object_id, stripe_call
from . import schedules
from .models import LIVE_STATUSES, Subscription
from .plans import PlanBook

log = logging.getLogger("tally.subscriptions")


async def retrieve_subscription(client: StripeGateway, subscription_id: str) -> dict[str, Any] | None:
    """The subscription as Stripe has it now; None when Stripe does not know it (deleted with its clock)."""
    async with stripe_call("retrieving a subscription"):
        try:
            return await client.retrieve_subscription(subscription_id)
        except InvalidRequestError as exc:
            if is_missing(exc):
                return None
            raise


async def retrieve_price(client: StripeGateway, price_id: str) -> dict[str, Any]:
    """The price (its amount, lookup key and metadata never change: from the gateway's cache once seen)."""
    async with stripe_call("retrieving a price"):
        return await client.cached_price(price_id)


async def stripe_now(session: AsyncSession, client: StripeGateway, obj: dict[str, Any]) -> int:
    """Now as Stripe sees ``obj``: its test clock's frozen time (remembered for the dunning scan), else the
    wall clock. Live objects never have a clock."""
    clock_id = object_id(obj.get("test_clock"))
    if not clock_id:
        return int(time.time())
    async with stripe_call("retrieving a test clock"):
        clock = await client.retrieve_test_clock(clock_id)
    await remember_clock(session, clock_id, int(clock["frozen_time"]))
    return int(clock["frozen_time"])


# Clocks only move forward: an older time never overwrites a newer one.
_REMEMBER_CLOCK = """
    INSERT INTO test_clock_times (id, frozen_time) VALUES (%s, %s)
    ON CONFLICT (id) DO UPDATE SET frozen_time = excluded.frozen_time
    WHERE test_clock_times.frozen_time < excluded.frozen_time"""


async def remember_clock(session: AsyncSession, clock_id: str, frozen_time: int) -> None:
    """Record a clock's time at once, autocommitted on ``Database.direct``, not in the caller's transaction.

    The time is Stripe's fact whatever becomes of the caller's transaction, and the row only moves forward.
    Written inside the caller's transaction, its row lock lasted until that transaction ended. Handlers take
    it before or after their subscription's lock depending on the event, so two of them could deadlock (seen
    in CI). ``direct`` connections are held for one statement and never wait for another connection, so a
    caller holding its session's connection cannot starve the pool it waits on. Nothing else writes the row."""
    await database_of(session).run_direct(lambda conn: conn.execute(_REMEMBER_CLOCK, (clock_id, frozen_time)))


async def user_for_customer(session: AsyncSession, customer_id: str | None,
                            metadata: dict[str, Any] | None = None) -> str | None:
    """The Tally user behind a Stripe customer (our stored id first; ``metadata.user_id`` only when it names a
    user whose customer is this one, so metadata can never move a subscription to another user)."""
    if not customer_id:
        return None
    user_id = await session.scalar(select(User.id).where(User.stripe_customer_id == customer_id))
    if user_id is None and metadata and metadata.get("user_id"):
        log.info("customer %s is not linked to a Tally user; metadata user_id %r ignored", customer_id,
                 metadata.get("user_id"))
    return user_id


def period_of(sub: dict[str, Any]) -> tuple[int | None, int | None]:
    """Since API version basil the current period lives on the items; older payloads have it on the subscription."""
    items = (sub.get("items") or {}).get("data") or []
    if items and items[0].get("current_period_end") is not None:
        return items[0].get("current_period_start"), items[0].get("current_period_end")
    return sub.get("current_period_start"), sub.get("current_period_end")


def first_item(sub: dict[str, Any]) -> dict[str, Any] | None:
    items = (sub.get("items") or {}).get("data") or []
    return items[0] if items else None


async def lock_row(session: AsyncSession, subscription_id: str) -> Subscription | None:
    return await session.scalar(select(Subscription).where(Subscription.id == subscription_id).with_for_update()
                                .execution_options(populate_existing=True))


async def sync(session: AsyncSession, client: StripeGateway, book: PlanBook, subscription_id: str,
               *, known: dict[str, Any] | None = None) -> Subscription | None:
    """Lock the mirror row (creating it on first sight), re-fetch the subscription, write Stripe's state.
    ``known``: a subscription object Stripe has just answered to a call made under this lock (saves a
    round trip). None when the subscription is not a Tally user's."""
    row = await lock_row(session, subscription_id)
    if row is None:
        sub = known or await retrieve_subscription(client, subscription_id)
        if sub is None:
            return None
        user_id = await user_for_customer(session, object_id(sub.get("customer")), sub.get("metadata"))
        if user_id is None:
            log.info("subscription %s belongs to no Tally user: ignored", subscription_id)
            return None
        await session.execute(insert(Subscription).values(
            id=subscription_id, user_id=user_id, stripe_customer_id=object_id(sub.get("customer")),
            status=sub.get("status") or "incomplete", stripe_created=int(sub.get("created") or 0))
            .on_conflict_do_nothing(index_elements=["id"]))
        row = await lock_row(session, subscription_id)
        assert row is not None
        known = None  # fetched before we held the lock: ask again, under it
    sub = known or await retrieve_subscription(client, subscription_id)
    if sub is None:
        return row
    apply(row, sub, book, await scheduled_change(client, book, sub))
    if object_id(sub.get("test_clock")):
        await stripe_now(session, client, sub)
    await session.flush()
    return row


Pending = tuple[str, str, int]  # plan id, interval, when it starts


async def scheduled_change(client: StripeGateway, book: PlanBook, sub: dict[str, Any]) -> Pending | None:
    """The plan the subscription's schedule switches to at the end of the current phase, if any."""
    schedule_id = object_id(sub.get("schedule"))
    if not schedule_id:
        return None
    waiting = schedules.next_change(await schedules.retrieve(client, schedule_id))
    if waiting is None:
        return None
    found = book.for_price(await retrieve_price(client, waiting[0]))
    return (found[0].id, found[1].interval, waiting[1]) if found else None


def apply(row: Subscription, sub: dict[str, Any], book: PlanBook, pending: Pending | None = None) -> None:
    """Write Stripe's subscription (and the change its schedule holds) onto the mirror row."""
    item = first_item(sub)
    price = (item or {}).get("price") or {}
    found = book.for_price(price)
    stripe_plan, stripe_interval = (found[0].id, found[1].interval) if found else (None, None)
    start, end = period_of(sub)
    row.status = sub.get("status") or row.status
    row.stripe_price_id = object_id(price) or row.stripe_price_id
    row.current_period_start, row.current_period_end = start, end
    row.cancel_at_period_end = bool(sub.get("cancel_at_period_end"))
    row.cancel_at = sub.get("cancel_at")
    row.trial_end = sub.get("trial_end")
    row.canceled_at = sub.get("canceled_at")
    row.ended_at = sub.get("ended_at")
    row.test_clock = object_id(sub.get("test_clock"))
    row.stripe_created = int(sub.get("created") or row.stripe_created)
    if pending is not None and pending[:2] != (stripe_plan, stripe_interval):
        row.plan_id, row.interval = stripe_plan, stripe_interval
        row.pending_plan_id, row.pending_interval, row.pending_effective_at = pending
        return
    # Downgrades recorded before schedules were used changed Stripe's price at once (proration none) and kept
    # the paid-for plan in effect until the period ended: honour those until their date.
    legacy = row.pending_plan_id is not None and not sub.get("schedule")
    if legacy and (stripe_plan, stripe_interval) == (row.pending_plan_id, row.pending_interval) \
            and start is not None and row.pending_effective_at is not None and start < row.pending_effective_at:
        return
    row.plan_id, row.interval = stripe_plan, stripe_interval
    row.pending_plan_id = row.pending_interval = row.pending_effective_at = None


async def current(session: AsyncSession, user_id: str, *, lock: bool = False) -> Subscription | None:
    """The user's subscription: the newest one still alive in Stripe, else the newest ended one."""
    query = (select(Subscription).where(Subscription.user_id == user_id)
             .order_by(case((Subscription.status.in_(LIVE_STATUSES), 0), else_=1),
                       Subscription.stripe_created.desc()).limit(1))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)
