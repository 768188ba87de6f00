"""Moving existing subscribers to a new price (Stripe's recommended way: a subscription schedule per subscriber).

``plan_moves`` works out, from Stripe's current state, who moves when: each active subscription of the plan and
interval on another price switches at its first renewal on or after the effective date *and* at least
``notice_days`` after now (its test clock's now, on a test clock), so every subscriber gets the full notice.
``--dry-run`` prints exactly that list; ``apply`` then gives each subscription a schedule — the current price
until that renewal, then the new one, then release — and records it. The worker sends each notice when it is
due (``send_due_notices``). A subscription that already has a schedule (a pending downgrade) is left alone and
reported, never overwritten. New sign-ups get the plans file's price at once: the file is the catalog."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import InvalidRequest
from ..stripe_gateway import StripeGateway, idempotency_key, object_id, stripe_call
from ..subscriptions import mirror
from ..subscriptions.models import Subscription
from ..subscriptions.plans import PlanBook, sync_plan_price
from .models import PriceChange, PriceChangeItem

DAY = 86400
LIVE = ("active", "trialing", "past_due")


@dataclass(frozen=True)
class Target:
    price_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Move:
    subscription_id: str
    user_id: str
    from_price_id: str
    from_amount: int
    to_amount: int
    currency: str
    switch_at: int
    notice_at: int
    test_clock: str | None
    skipped: str | None = None  # why this subscription is not moved

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "switch_on": _day(self.switch_at), "notice_on": _day(self.notice_at)}


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


async def resolve_target(client: StripeGateway, book: PlanBook, plan_id: str, interval: str,
                         to_price: str) -> Target:
    """The new price: a lookup key or price id as Stripe has it now, or an amount (minor units) that must be
    the plans file's (the file is what new sign-ups pay; change it first, so they get the new price at once)."""
    plan = book.require(plan_id, interval, param="plan")
    spec = plan.prices[interval]
    if to_price.isdigit():
        if int(to_price) != spec.amount:
            raise InvalidRequest(
                f"The plans file prices {plan_id} at {spec.amount} per {interval}, not {to_price}: set the new amount "
                "in TALLY_PLANS first (new sign-ups then pay it at once), then move existing subscribers.",
                param="to_price")
        return Target(await sync_plan_price(client, plan, interval), spec.amount, plan.currency)
    async with stripe_call("finding the new price"):
        if to_price.startswith("price_"):
            price = await client.retrieve_price(to_price)
        else:
            found = await client.find_price(to_price)
            if found is None:
                raise InvalidRequest(f"No Stripe price has the lookup key {to_price!r}.", param="to_price")
            price = found
    product = price.get("product")
    if (product if isinstance(product, str) else (product or {}).get("id")) != plan.product_id or \
            (price.get("recurring") or {}).get("interval") != interval:
        raise InvalidRequest(f"{to_price} is not a {interval}ly price of the {plan_id} plan.", param="to_price")
    return Target(str(price["id"]), int(price["unit_amount"]), str(price["currency"]))


def add_months(when: int, months: int) -> int:
    """``months`` calendar months after ``when``, the day clamped to the month's last (Stripe's cycle rule)."""
    start = datetime.fromtimestamp(when, UTC)
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return int(start.replace(year=year, month=month + 1, day=day).timestamp())


def first_renewal_from(anchor: int, period_end: int, interval: str, earliest: int) -> int:
    """The first renewal at or after ``earliest``: a period end of the cycle anchored at ``anchor``, counted from
    the anchor (so 31 January renews on 28 February, then 31 March), never before the current period ends."""
    months = 12 if interval == "year" else 1
    k = 0
    renewal = anchor
    while renewal < max(earliest, period_end):
        k += 1
        renewal = add_months(anchor, months * k)
    return renewal


async def plan_moves(session: AsyncSession, client: StripeGateway, *, plan_id: str, interval: str,
                     target: Target, effective_at: int, notice_days: int) -> list[Move]:
    """Who moves when, from each subscription as Stripe has it now (read-only but for clock times)."""
    rows = (await session.scalars(select(Subscription).where(
        Subscription.plan_id == plan_id, Subscription.interval == interval, Subscription.status.in_(LIVE),
        Subscription.stripe_price_id != target.price_id).order_by(Subscription.stripe_created))).all()
    moves = []
    for row in rows:
        async with stripe_call("retrieving a subscription"):
            sub = await client.retrieve_subscription(row.id)
        item = sub["items"]["data"][0]
        now = await mirror.stripe_now(session, client, sub)
        switch_at = first_renewal_from(int(sub["billing_cycle_anchor"]), int(item["current_period_end"]), interval,
                                       max(effective_at, now + notice_days * DAY))
        skipped = None
        if sub.get("status") not in LIVE or sub.get("cancel_at_period_end"):
            skipped = "ends before it renews"
        elif sub.get("schedule"):
            skipped = "has a scheduled change already"
        moves.append(Move(row.id, row.user_id, str(item["price"]["id"]), int(item["price"]["unit_amount"] or 0),
                          target.amount, target.currency, switch_at, switch_at - notice_days * DAY,
                          object_id(sub.get("test_clock")), skipped))
    return moves


async def apply(session: AsyncSession, client: StripeGateway, *, plan_id: str, interval: str,
                target: Target, effective_at: int, notice_days: int, moves: list[Move]) -> PriceChange:
    """Record the change and give each subscription that moves its schedule (idempotent per change and
    subscription, so a crash half-way can be finished by running the same change again)."""
    change = PriceChange(id=str(uuid.uuid4()), plan_id=plan_id, interval=interval, to_price_id=target.price_id,
                         to_amount=target.amount, currency=target.currency, effective_at=effective_at,
                         notice_days=notice_days)
    session.add(change)
    await session.flush()
    for move in moves:
        if move.skipped:
            continue
        schedule = await schedule_switch(client, move, interval=interval, to_price_id=target.price_id,
                                         key=f"{change.id}:{move.subscription_id}")
        await session.execute(insert(PriceChangeItem).values(
            change_id=change.id, subscription_id=move.subscription_id, user_id=move.user_id,
            from_price_id=move.from_price_id, from_amount=move.from_amount, switch_at=move.switch_at,
            notice_at=move.notice_at, test_clock=move.test_clock, schedule_id=schedule["id"])
            .on_conflict_do_nothing(constraint="uq_price_change_items_change_id_subscription_id"))
    return change


async def schedule_switch(client: StripeGateway, move: Move, *, interval: str, to_price_id: str,
                          key: str) -> dict[str, Any]:
    """The subscription's schedule: its current price until ``switch_at``, then one period of the new price,
    then release (the subscription goes on at the new price)."""
    async with stripe_call("scheduling the price change"):
        schedule = await client.create_subscription_schedule(
            {"from_subscription": move.subscription_id},
            idempotency_key=idempotency_key("price_change", key, "schedule"))
        first = schedule["phases"][0]
        phases = [
            {"items": [{"price": move.from_price_id, "quantity": 1}], "start_date": first["start_date"],
             "end_date": move.switch_at},
            {"items": [{"price": to_price_id, "quantity": 1}], "duration": {"interval": interval, "interval_count": 1}},
        ]
        return await client.update_subscription_schedule(
            schedule["id"], {"phases": phases, "end_behavior": "release", "metadata": {"tally_price_change": key}},
            idempotency_key=idempotency_key("price_change", key, "phases"))


# -- progress ------------------------------------------------------------------------------------------
_PROGRESS = text("""
    SELECT c.id, c.plan_id, c.interval, c.to_amount, c.currency, c.effective_at, c.notice_days, c.created_at,
           count(i.id) AS moving,
           count(i.id) FILTER (WHERE i.status = 'noticed') AS noticed,
           count(i.id) FILTER (WHERE s.stripe_price_id = c.to_price_id) AS switched
      FROM price_changes c
      LEFT JOIN price_change_items i ON i.change_id = c.id
      LEFT JOIN subscriptions s ON s.id = i.subscription_id
     GROUP BY c.id ORDER BY c.created_at DESC LIMIT 100""")


async def progress(session: AsyncSession) -> list[dict[str, Any]]:
    """Each price change with how many subscriptions it moves, were told, and have switched (Stripe's word:
    the mirrored subscription bills the new price)."""
    return [dict(r._mapping) for r in (await session.execute(_PROGRESS)).all()]
