"""The prorated credits of an upgrade, once its proration invoice is paid: the change Tally's API recorded
(``service.grant_change_if_paid``), or, for an upgrade made elsewhere (the billing portal), one derived from the
paid invoice's proration lines."""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..stripe_gateway import StripeGateway
from . import mirror
from .invoices import all_lines, is_proration, line_price_id
from .models import Subscription, SubscriptionChange
from .plans import PlanBook, PlanPrice, SubscriptionPlan, upgrade_credits

CHANGE_GRACE = dt.timedelta(minutes=5)  # how long an upgrade's route may take to record its invoice


class ChangeNotRecordedYet(RuntimeError):
    """An upgrade invoice arrived while the route that asked for it has not committed its record: retry."""


async def grant_invoiced_upgrade(session: AsyncSession, client: StripeGateway, *, book: PlanBook, row: Subscription,
                         invoice: dict[str, Any]) -> None:
    """The prorated credits of an upgrade, once its invoice is paid: the change Tally's API recorded, or (for
    an upgrade made elsewhere, e.g. in the billing portal) one derived from the invoice's proration lines."""
    if invoice.get("billing_reason") != "subscription_update":
        return
    from .service import grant_change_if_paid

    change = await session.scalar(select(SubscriptionChange).where(
        SubscriptionChange.stripe_invoice_id == invoice["id"]).with_for_update())
    if change is None:
        waiting = await session.scalar(select(func.count()).select_from(SubscriptionChange).where(
            SubscriptionChange.subscription_id == row.id, SubscriptionChange.status == "requested",
            SubscriptionChange.kind == "upgrade", SubscriptionChange.credits > 0,
            SubscriptionChange.created_at > func.now() - CHANGE_GRACE))
        if waiting:
            raise ChangeNotRecordedYet(f"invoice {invoice['id']}: an upgrade of {row.id} is still being recorded")
        change = await _derived_change(session, client, book=book, row=row, invoice=invoice)
    if change is not None:
        await grant_change_if_paid(session, client, change, invoice, book=book)


@dataclass(frozen=True)
class _Proration:
    """The plan prices an invoice's proration lines move between, and the period ``[t, end)`` of the new one."""
    old: tuple[SubscriptionPlan, PlanPrice] | None
    new: tuple[SubscriptionPlan, PlanPrice] | None
    t: int
    end: int


async def _proration_of(client: StripeGateway, book: PlanBook, invoice: dict[str, Any]) -> _Proration:
    """The "Unused time" line (negative) names the old price; the "Remaining time" line (positive) the new one."""
    old = new = None
    t = end = 0
    for line in await all_lines(client, invoice):
        price_id = line_price_id(line)
        if price_id is None or not is_proration(line):
            continue
        found = book.for_price(await mirror.retrieve_price(client, price_id))
        period = line.get("period") or {}
        if found is None:
            continue
        if int(line.get("amount") or 0) < 0:
            old = found
        elif int(line.get("amount") or 0) > 0:
            new = found
            t, end = int(period.get("start") or 0), int(period.get("end") or 0)
    return _Proration(old, new, t, end)


async def _derived_change(session: AsyncSession, client: StripeGateway, *, book: PlanBook, row: Subscription,
                          invoice: dict[str, Any]) -> SubscriptionChange | None:
    """Record an upgrade Tally did not ask for from its invoice: the "Unused time" line names the old price,
    the "Remaining time" line the new one, and their period ``[t, end)`` the change's instant. Its id comes
    from the invoice's, so replays find the same record (and the same ledger reference)."""
    proration = await _proration_of(client, book, invoice)
    old, new, t, end = proration.old, proration.new, proration.t, proration.end
    if old is None or new is None or old[1].interval != new[1].interval or new[0].rank <= old[0].rank:
        return None  # not an upgrade within an interval (a new cycle's invoice grants its credits itself)
    start = _period_start(row, new[1].interval, end)
    credits = upgrade_credits(old[1].credits, new[1].credits, end - t, end - start)
    change_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"stripe-invoice:{invoice['id']}"))
    await session.execute(insert(SubscriptionChange).values(
        id=change_id, user_id=row.user_id, subscription_id=row.id, kind="upgrade", from_plan_id=old[0].id,
        from_interval=old[1].interval, to_plan_id=new[0].id, to_interval=new[1].interval, proration_date=t,
        period_start=start, period_end=end, credits=credits, stripe_invoice_id=invoice["id"], status="applied")
        .on_conflict_do_nothing())
    return await session.scalar(select(SubscriptionChange).where(
        SubscriptionChange.stripe_invoice_id == invoice["id"]).with_for_update())


def _period_start(row: Subscription, interval: str, end: int) -> int:
    """The start of the billing period that ends at ``end``: the mirror's, when that is still the current one;
    otherwise one interval back on the calendar (how Stripe counts periods from the cycle's anchor day)."""
    if row.current_period_end == end and row.current_period_start is not None:
        return int(row.current_period_start)
    d = dt.datetime.fromtimestamp(end, dt.UTC)
    months = d.year * 12 + d.month - 1 - (12 if interval == "year" else 1)
    year, month = divmod(months, 12)
    day = min(d.day, calendar.monthrange(year, month + 1)[1])
    return int(d.replace(year=year, month=month + 1, day=day).timestamp())
