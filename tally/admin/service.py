"""The operator dashboard's numbers, computed with SQL from Tally's own tables for a period [start, end):

- revenue: paid orders (``orders.paid_at``) and paid subscription invoices (``subscription_invoices.paid_at``,
  Stripe's time), per UTC day and currency; refunds of those orders beside them;
- payments: the webhook inbox's ``charge.succeeded`` (one per successful attempt) and
  ``payment_intent.payment_failed`` (one per failed attempt, with its decline code) received in the period;
- webhooks: the inbox rows received in the period by status, and the events that failed for good;
- MRR: ``subscription_history`` with the plans file (see ``tally.admin.mrr``);
- credits: outstanding and granted, used and expired per day, from the ledger's counters (``credit_totals``
  through ``tally.ledger.service``: never a sum over the ledger's own tables);
- disputes: the open ones with the soonest evidence deadlines (``tally.reversals.repository``);
- orders: the most recent, or those matching a user id, email, order id or Stripe id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ..ledger import service as ledger
from ..reversals.repository import DisputeLine, open_disputes
from ..subscriptions.plans import PlanBook
from .mrr import HistoryRow, MrrReport, daily_mrr, movement

PAYMENT_HEALTHY, PAYMENT_WARNING = 0.95, 0.90  # success rate ≥ 95 % healthy, 90–95 % warning, < 90 % critical
WEBHOOK_HEALTHY, WEBHOOK_WARNING = 0.995, 0.99  # handled share ≥ 99.5 % healthy, 99–99.5 % warning
MAX_DAYS = 366
ORDER_ROWS = 50
FAILED_EVENT_ROWS = 50
DISPUTE_ROWS = 5  # the dashboard's few; /admin/disputes lists them all


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]

    @classmethod
    def last(cls, days: int, today: date) -> Period:
        return cls(today - timedelta(days=days - 1), today)


def grade(rate: float | None, healthy: float, warning: float) -> str:
    if rate is None:
        return "none"
    return "healthy" if rate >= healthy else "warning" if rate >= warning else "critical"


@dataclass
class Revenue:
    currency: str
    per_day: list[int]  # aligned with Period.days
    packs: int = 0
    subscriptions: int = 0
    refunded: int = 0  # of the orders paid in the period, refunded by now
    tax: int = 0  # within the gross: tax Stripe collected on pack orders (automatic tax)

    @property
    def gross(self) -> int:
        return self.packs + self.subscriptions

    @property
    def net(self) -> int:
        return self.gross - self.tax


@dataclass
class Payments:
    succeeded: int = 0
    failed: int = 0
    by_method: dict[str, list[int]] = field(default_factory=dict)  # method → [succeeded, failed]
    decline_codes: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    per_day: list[tuple[int, int]] = field(default_factory=list)  # (succeeded, failed) per day

    @property
    def success_rate(self) -> float | None:
        attempts = self.succeeded + self.failed
        return self.succeeded / attempts if attempts else None

    @property
    def grade(self) -> str:
        return grade(self.success_rate, PAYMENT_HEALTHY, PAYMENT_WARNING)


@dataclass
class Webhooks:
    by_status: dict[str, int] = field(default_factory=dict)
    failed_by_type: list[tuple[str, int]] = field(default_factory=list)
    oldest_pending_seconds: float = 0.0

    @property
    def handled(self) -> int:
        return self.by_status.get("processed", 0) + self.by_status.get("ignored", 0)

    @property
    def health(self) -> float | None:
        settled = self.handled + self.by_status.get("failed", 0)
        return self.handled / settled if settled else None

    @property
    def grade(self) -> str:
        return grade(self.health, WEBHOOK_HEALTHY, WEBHOOK_WARNING)


@dataclass
class Credits:
    outstanding: ledger.Outstanding  # now, whatever the period
    granted: list[int]  # per day, aligned with Period.days (both categories)
    used: list[int]
    expired: list[int]


@dataclass
class Dashboard:
    period: Period
    revenue: list[Revenue]
    payments: Payments
    webhooks: Webhooks
    mrr: MrrReport
    mrr_per_day: dict[str, list[int]]
    failed_events: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    query: str | None
    credits: Credits
    open_disputes: list[DisputeLine]


# -- revenue ----------------------------------------------------------------------------------------------
REVENUE_SQL = text("""
    SELECT (paid AT TIME ZONE 'UTC')::date AS day, currency, source, sum(amount) AS amount, sum(refunded) AS refunded,
           sum(tax) AS tax
      FROM (SELECT paid_at AS paid, lower(currency) AS currency, 'packs' AS source, amount, amount_refunded AS refunded,
                   amount_tax AS tax
              FROM orders WHERE status IN ('paid', 'refunded') AND paid_at >= :start AND paid_at < :end
            UNION ALL
            SELECT COALESCE(to_timestamp(paid_at), created_at), lower(currency), 'subscriptions', amount_paid, 0, 0
              FROM subscription_invoices
             WHERE amount_paid > 0 AND COALESCE(to_timestamp(paid_at), created_at) >= :start
               AND COALESCE(to_timestamp(paid_at), created_at) < :end) AS p
     GROUP BY 1, 2, 3 ORDER BY 2, 1""")


async def revenue(session: AsyncSession, period: Period) -> list[Revenue]:
    index = {d: i for i, d in enumerate(period.days)}
    out: dict[str, Revenue] = {}
    rows = await session.execute(REVENUE_SQL, {"start": period.start, "end": period.end})
    for day, currency, source, amount, refunded, tax in rows.all():
        r = out.setdefault(currency, Revenue(currency, [0] * len(index)))
        r.per_day[index[day]] += int(amount)
        setattr(r, source, getattr(r, source) + int(amount))
        r.refunded += int(refunded)
        r.tax += int(tax)
    return [out[c] for c in sorted(out)]


# -- payments ---------------------------------------------------------------------------------------------
PAYMENTS_SQL = text("""
    SELECT (received_at AT TIME ZONE 'UTC')::date AS day,
           CASE WHEN type = 'charge.succeeded' THEN 'succeeded' ELSE 'failed' END AS outcome,
           COALESCE(payload #>> '{data,object,payment_method_details,type}',
                    payload #>> '{data,object,last_payment_error,payment_method,type}', 'unknown') AS method,
           CASE WHEN type = 'charge.succeeded' THEN NULL
                ELSE COALESCE(payload #>> '{data,object,last_payment_error,decline_code}',
                              payload #>> '{data,object,last_payment_error,code}', 'unknown') END AS code,
           count(*) AS n
      FROM webhook_events
     WHERE type IN ('charge.succeeded', 'payment_intent.payment_failed')
       AND received_at >= :start AND received_at < :end
     GROUP BY 1, 2, 3, 4""")


async def payments(session: AsyncSession, period: Period) -> Payments:
    index = {d: i for i, d in enumerate(period.days)}
    result = Payments(per_day=[(0, 0)] * len(index))
    per_day = [[0, 0] for _ in index]
    codes: dict[str, int] = defaultdict(int)
    rows = await session.execute(PAYMENTS_SQL, {"start": period.start, "end": period.end})
    for day, outcome, method, code, n in rows.all():
        slot = 0 if outcome == "succeeded" else 1
        per_day[index[day]][slot] += n
        result.by_method.setdefault(method, [0, 0])[slot] += n
        if slot:
            result.failed += n
            codes[code] += n
        else:
            result.succeeded += n
    result.per_day = [(s, f) for s, f in per_day]
    result.decline_codes = sorted(codes.items(), key=lambda item: (-item[1], item[0]))[:10]
    result.by_method = dict(sorted(result.by_method.items()))
    return result


# -- webhooks ---------------------------------------------------------------------------------------------
WEBHOOK_STATUS_SQL = text("""
    SELECT status, count(*) FROM webhook_events WHERE received_at >= :start AND received_at < :end GROUP BY 1""")
WEBHOOK_FAILED_TYPES_SQL = text("""
    SELECT type, count(*) FROM webhook_events
     WHERE status = 'failed' AND received_at >= :start AND received_at < :end
     GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""")
OLDEST_PENDING_SQL = text("""
    SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(received_at)), 0) FROM webhook_events WHERE status = 'pending'""")
FAILED_EVENTS_SQL = text("""
    SELECT id, type, attempts, last_error, received_at FROM webhook_events WHERE status = 'failed'
     ORDER BY received_at DESC, id LIMIT :limit""")


async def webhooks(session: AsyncSession, period: Period) -> Webhooks:
    bounds = {"start": period.start, "end": period.end}
    result = Webhooks()
    result.by_status = {s: int(n) for s, n in (await session.execute(WEBHOOK_STATUS_SQL, bounds)).all()}
    result.failed_by_type = [(t, int(n)) for t, n in (await session.execute(WEBHOOK_FAILED_TYPES_SQL, bounds)).all()]
    result.oldest_pending_seconds = float((await session.execute(OLDEST_PENDING_SQL)).scalar_one())
    return result


async def failed_events(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(FAILED_EVENTS_SQL, {"limit": FAILED_EVENT_ROWS})
    return [dict(r._mapping) for r in rows]


# -- MRR --------------------------------------------------------------------------------------------------
HISTORY_SQL = text("""
    SELECT subscription_id, plan_id, interval, status, recorded_at FROM subscription_history
     WHERE recorded_at < :end ORDER BY subscription_id, recorded_at, id""")


async def history(session: AsyncSession, end: datetime) -> list[HistoryRow]:
    rows = await session.execute(HISTORY_SQL, {"end": end})
    return [HistoryRow(*r) for r in rows.all()]


# -- credits --------------------------------------------------------------------------------------------
async def credits(session: AsyncSession, period: Period) -> Credits:
    per_day = await ledger.daily_totals(session, period.first_day)
    days = period.days

    def series(movement: str) -> list[int]:
        return [per_day.get(day, {}).get(movement, 0) for day in days]

    return Credits(await ledger.outstanding(session), series("granted"), series("used"), series("expired"))


# -- orders -----------------------------------------------------------------------------------------------
ORDERS_SQL = """
    SELECT o.id, o.user_id, u.email, o.pack_name, o.amount, o.currency, o.status, o.kind,
           o.stripe_checkout_session_id, o.stripe_payment_intent_id, u.stripe_customer_id, o.failure_message,
           o.amount_refunded, o.created_at, o.paid_at
      FROM orders o LEFT JOIN users u ON u.id = o.user_id
     {where}
     ORDER BY o.created_at DESC, o.id LIMIT :limit"""
ORDERS_MATCH = """WHERE o.id = :q OR o.user_id = :q OR lower(u.email) = lower(:q) OR u.stripe_customer_id = :q
                   OR o.stripe_checkout_session_id = :q OR o.stripe_payment_intent_id = :q"""


async def orders(session: AsyncSession, query: str | None) -> list[dict[str, Any]]:
    sql = text(ORDERS_SQL.format(where=ORDERS_MATCH if query else ""))
    params: dict[str, Any] = {"limit": ORDER_ROWS}
    if query:
        params["q"] = query
    return [dict(r._mapping) for r in await session.execute(sql, params)]


# -- everything -------------------------------------------------------------------------------------------
async def dashboard(session: AsyncSession, plans: PlanBook, period: Period, query: str | None = None) -> Dashboard:
    rows = await history(session, period.end)
    day_ends = [datetime.combine(d + timedelta(days=1), time(), UTC) for d in period.days]
    return Dashboard(
        period=period,
        revenue=await revenue(session, period),
        payments=await payments(session, period),
        webhooks=await webhooks(session, period),
        mrr=movement(plans, rows, period.start, period.end),
        mrr_per_day=daily_mrr(plans, rows, day_ends),
        failed_events=await failed_events(session),
        orders=await orders(session, query),
        query=query,
        credits=await credits(session, period),
        open_disputes=await open_disputes(session, limit=DISPUTE_ROWS),
    )
