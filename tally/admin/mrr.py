"""MRR from the subscription history (migration 0005: one row each time a subscription's plan, interval or
status changed), at any moment and its movement over a period. Pure functions over rows, so that the rules are
readable in one place and testable without a database.

Rules (shown on the dashboard beside the numbers):
- A subscription counts while its status is ``active`` or ``past_due`` (Stripe is still collecting); trials,
  incomplete, unpaid, paused and canceled subscriptions count 0.
- Its MRR is its plan's price for its interval in the plans file, in the plan's currency: the monthly price as
  is, an annual price divided by 12 and rounded half up to whole minor units, per subscription (so totals are
  sums of integers and the movement adds up exactly). Discounts and taxes are not in it.
- Movement compares each subscription's MRR at the period's start and end: new (0 → >0), expansion (up),
  contraction (down, still >0), churn (>0 → 0). So MRR_end = MRR_start + new + expansion − contraction − churn,
  per currency. A subscription that moved to a plan in another currency churns in one and is new in the other.
- A churn is involuntary when the subscription left from ``past_due`` or ended ``unpaid`` (payment failed),
  voluntary otherwise (cancelled).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..subscriptions.plans import PlanBook

COUNTING = frozenset({"active", "past_due"})
INVOLUNTARY_END = frozenset({"unpaid", "incomplete_expired"})


@dataclass(frozen=True)
class HistoryRow:
    subscription_id: str
    plan_id: str | None
    interval: str | None
    status: str
    recorded_at: datetime


def monthly_amount(amount: int, interval: str) -> int:
    """Minor units per month: annual ÷ 12 rounded half up (amounts are positive)."""
    return (amount + 6) // 12 if interval == "year" else amount


def mrr_of(plans: PlanBook, row: HistoryRow | None) -> tuple[str, int] | None:
    """(currency, monthly minor units) of one subscription state; None when it does not count."""
    if row is None or row.status not in COUNTING or not row.plan_id or not row.interval:
        return None
    plan = plans.get(row.plan_id)
    price = plan.price(row.interval) if plan else None
    if plan is None or price is None:
        return None
    return plan.currency, monthly_amount(price.amount, row.interval)


@dataclass
class Movement:
    start: int = 0
    new: int = 0
    expansion: int = 0
    contraction: int = 0
    churn: int = 0
    end: int = 0
    subscribers_start: int = 0
    subscribers_end: int = 0

    @property
    def arpu(self) -> int | None:
        """MRR per paying subscription at the end, rounded half up."""
        if not self.subscribers_end:
            return None
        return (2 * self.end + self.subscribers_end) // (2 * self.subscribers_end)


@dataclass
class MrrReport:
    by_currency: dict[str, Movement] = field(default_factory=dict)
    counting_at_start: int = 0  # subscriptions with MRR > 0 at the start, every currency
    churned: int = 0
    involuntary: int = 0
    unpriced: set[str] = field(default_factory=set)  # plan ids in the history that the plans file lacks

    @property
    def churn_rate(self) -> float | None:
        return self.churned / self.counting_at_start if self.counting_at_start else None

    @property
    def involuntary_share(self) -> float | None:
        return self.involuntary / self.churned if self.churned else None


def _by_subscription(rows: Iterable[HistoryRow]) -> dict[str, list[HistoryRow]]:
    out: dict[str, list[HistoryRow]] = defaultdict(list)
    for row in rows:  # callers pass rows in (recorded_at, id) order
        out[row.subscription_id].append(row)
    return out


def _state_at(history: Sequence[HistoryRow], moment: datetime) -> HistoryRow | None:
    found = None
    for row in history:
        if row.recorded_at >= moment:
            break
        found = row
    return found


def _involuntary(history: Sequence[HistoryRow], end: datetime) -> bool:
    """Whether the subscription's last exit from a counting status before ``end`` was for non-payment."""
    last_counting: HistoryRow | None = None
    final: HistoryRow | None = None
    for row in history:
        if row.recorded_at >= end:
            break
        if row.status in COUNTING:
            last_counting = row
        final = row
    if final is not None and final.status in INVOLUNTARY_END:
        return True
    return last_counting is not None and last_counting.status == "past_due"


def movement(plans: PlanBook, rows: Iterable[HistoryRow], start: datetime, end: datetime) -> MrrReport:
    report = MrrReport()
    for history in _by_subscription(rows).values():
        report.unpriced.update(r.plan_id for r in history if r.plan_id and plans.get(r.plan_id) is None)
        before = mrr_of(plans, _state_at(history, start))
        after = mrr_of(plans, _state_at(history, end))
        if before:
            m = report.by_currency.setdefault(before[0], Movement())
            m.start += before[1]
            m.subscribers_start += 1
            report.counting_at_start += 1
        if after:
            m = report.by_currency.setdefault(after[0], Movement())
            m.end += after[1]
            m.subscribers_end += 1
        if before and after and before[0] == after[0]:
            m = report.by_currency[before[0]]
            if after[1] > before[1]:
                m.expansion += after[1] - before[1]
            else:
                m.contraction += before[1] - after[1]
            continue
        if before:
            report.by_currency[before[0]].churn += before[1]
            if not after:  # a customer lost, not a move to a plan in another currency
                report.churned += 1
                report.involuntary += _involuntary(history, end)
        if after:
            report.by_currency[after[0]].new += after[1]
    return report


def daily_mrr(plans: PlanBook, rows: Iterable[HistoryRow], day_ends: Sequence[datetime]) -> dict[str, list[int]]:
    """MRR per currency at each of ``day_ends`` (state as of just before each moment)."""
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(day_ends))
    for history in _by_subscription(rows).values():
        for i, moment in enumerate(day_ends):
            value = mrr_of(plans, _state_at(history, moment))
            if value:
                series[value[0]][i] += value[1]
    return dict(series)
