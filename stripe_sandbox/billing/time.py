"""Which clock an object lives on, and Stripe's calendar arithmetic for billing periods.

Objects attached to a test clock (through their customer) live on the clock's ``frozen_time``; everything else
lives on the sandbox clock. Billing periods are counted from the billing cycle anchor, never from the previous
period, so that a subscription anchored on the 31st bills on the 28th/29th/30th of short months and comes back
to the 31st afterwards, as Stripe's do.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from ..store import Obj

CLOCK_TYPE = "test_helpers.test_clock"
DAY = 86400


def clock_of(sb: Any, obj: Obj | None) -> Obj | None:
    """The test clock an object (a customer, or anything with ``test_clock`` or ``customer``) is bound to."""
    if obj is None:
        return None
    clock_id = obj.get("test_clock")
    if clock_id is None and obj.get("object") != "customer" and isinstance(obj.get("customer"), str):
        customer = sb.store.get(obj["customer"], "customer")
        clock_id = customer.get("test_clock") if customer else None
    if isinstance(clock_id, dict):
        clock_id = clock_id.get("id")
    return sb.store.get(clock_id, CLOCK_TYPE) if clock_id else None


def now_for(sb: Any, obj: Obj | None) -> int:
    """Now, as seen by ``obj``: its test clock's frozen time, or the sandbox clock."""
    clock = clock_of(sb, obj)
    return int(clock["frozen_time"]) if clock is not None else sb.clock.now_int()


def add_interval(anchor: int, interval: str, count: int, times: int = 1) -> int:
    """``anchor`` plus ``times`` x (``count`` ``interval``s), clamping the day of month like Stripe."""
    if interval == "day":
        return anchor + DAY * count * times
    if interval == "week":
        return anchor + 7 * DAY * count * times
    months = count * times * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(anchor, UTC)
    total = start.month - 1 + months
    year, month = start.year + total // 12, total % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def add_months(when: int, months: int) -> int:
    return add_interval(when, "month", months)


def period_containing(anchor: int, interval: str, count: int, when: int) -> tuple[int, int]:
    """The billing period ``[start, end)`` that holds ``when`` for a cycle anchored at ``anchor``."""
    if when < anchor:
        return anchor, add_interval(anchor, interval, count)
    # Estimate the number of whole periods, then correct: O(1) whatever the subscription's age.
    approx = {"day": DAY, "week": 7 * DAY, "month": 30 * DAY, "year": 365 * DAY}[interval] * count
    n = max(0, (when - anchor) // approx - 1)
    while add_interval(anchor, interval, count, n + 1) <= when:
        n += 1
    while n > 0 and add_interval(anchor, interval, count, n) > when:
        n -= 1
    return add_interval(anchor, interval, count, n), add_interval(anchor, interval, count, n + 1)


def interval_seconds(interval: str, count: int) -> int:
    """A nominal length, for limits such as "a test clock advances at most two intervals"."""
    return {"day": DAY, "week": 7 * DAY, "month": 31 * DAY, "year": 366 * DAY}[interval] * count
