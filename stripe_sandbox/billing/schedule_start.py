"""Schedules created with their own phases (``customer`` + ``phases``): the subscription starts with them.

When its start has come, a schedule creates its subscription from the first phase through the code of
``POST /v1/subscriptions`` (same invoice, payment with the customer's default payment method, same events); the
subscription names the schedule from its first event on. A schedule that starts later waits ``not_started``
for a timer at its start, on the customer's test clock or the sandbox clock, like the timers of its phases;
once started it is an ordinary schedule, moved through its phases by ``schedules``.

Timers follow ``timeline``'s rule: never cancelled, the start timer checks that the schedule still waits for
that very start (an update may have moved it).
"""

from __future__ import annotations

from typing import Any

from ..events import emit
from ..params import Params
from ..resources.subscriptions import subscribe
from ..store import Obj
from . import schedules as sched, timeline
from .time import now_for

NOT_STARTED = "not_started"


def create(sb: Any, *, customer: Obj, phases: list[Obj], end_behavior: str, metadata: dict[str, str],
           default_payment_method: str | None) -> Obj:
    now = now_for(sb, customer)
    schedule = sched.new_schedule(
        customer=customer["id"], clock=customer.get("test_clock"), phases=phases, created=now, status=NOT_STARTED,
        subscription=None, end_behavior=end_behavior, default_payment_method=default_payment_method,
        metadata=metadata)
    sb.store.add(schedule)
    start = phases[0]["start_date"]
    if start <= now:
        _start(sb, schedule, start)
    else:
        _wait(sb, schedule)
    emit(sb, "subscription_schedule.created", schedule)
    return schedule


def replace_phases(sb: Any, schedule: Obj, phases: list[Obj], *, end_behavior: str,
                   metadata: dict[str, str]) -> Obj:
    """New phases for a schedule still waiting; a first phase moved to now starts it."""
    schedule.update(phases=phases, end_behavior=end_behavior, metadata=metadata)
    start = phases[0]["start_date"]
    if start <= now_for(sb, schedule):
        _start(sb, schedule, start)
    else:
        sb.store.save(schedule)
        _wait(sb, schedule)
    emit(sb, "subscription_schedule.updated", schedule)
    return schedule


def _wait(sb: Any, schedule: Obj) -> None:
    start = schedule["phases"][0]["start_date"]
    timeline.at_once(sb, schedule.get("test_clock"), start, "schedule.start", schedule["id"], start)


def _start(sb: Any, schedule: Obj, start: int) -> None:
    first = schedule["phases"][0]
    params: dict[str, Any] = {
        "customer": schedule["customer"],
        "items": [{"price": i["price"], "quantity": str(i["quantity"]), "metadata": i["metadata"]}
                  for i in first["items"]],
        "metadata": first["metadata"],
    }
    if first["description"]:
        params["description"] = first["description"]
    if schedule["default_settings"]["default_payment_method"]:
        params["default_payment_method"] = schedule["default_settings"]["default_payment_method"]
    if schedule["end_behavior"] == "cancel":
        params["cancel_at"] = str(schedule["phases"][-1]["end_date"])
    sub = subscribe(sb, Params(params), at=start, schedule_id=schedule["id"])
    schedule.update(status="active", subscription=sub["id"],
                    current_phase={"end_date": first["end_date"], "start_date": first["start_date"]})
    sb.store.save(schedule)
    sched.sync_cancel_at(sb, schedule, sub)  # records the cancel_at as the schedule's, for a later release
    sched.set_timers(sb, schedule)


def cancel(sb: Any, schedule: Obj) -> Obj:
    """A schedule canceled before it started: no subscription to end."""
    schedule.update(status="canceled", canceled_at=now_for(sb, schedule))
    sb.store.save(schedule)
    emit(sb, "subscription_schedule.canceled", schedule)
    return schedule


@timeline.timer("schedule.start")
def _start_due(sb: Any, schedule_id: str, start: int) -> None:
    schedule = sched.get(sb, schedule_id)
    if schedule is None or schedule["status"] != NOT_STARTED or schedule["phases"][0]["start_date"] != start:
        return
    customer = sb.store.get(schedule["customer"], "customer")
    if customer is None or customer.get("deleted"):
        cancel(sb, schedule)  # the customer was deleted while the schedule waited
        return
    _start(sb, schedule, start)
    emit(sb, "subscription_schedule.updated", schedule)
