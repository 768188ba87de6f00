"""Billing work that falls due at a time: renewals, trial ends, payment retries, reminders.

Each test clock has its own timeline, run by ``advance``; objects without a clock share the sandbox timeline,
run by the sandbox scheduler. A timeline is a heap of ``[when, seq, timer name, args]`` kept in the store's
key-value part, so that it survives a restart with ``--data``. Timers are never cancelled: each one checks,
when it runs, that the state it was set for still holds (a renewal carries the period end it expects), which
keeps every state change free of bookkeeping about what it made obsolete.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from typing import Any

from ..routing import on_start
from ..scheduler import job

log = logging.getLogger("stripe_sandbox.billing")

SANDBOX = "sandbox"
Timer = Callable[..., None]
TIMERS: dict[str, Timer] = {}


def timer(name: str) -> Callable[[Timer], Timer]:
    def register(fn: Timer) -> Timer:
        TIMERS[name] = fn
        return fn

    return register


def _key(clock_id: str | None) -> str:
    return f"billing_timers:{clock_id or SANDBOX}"


def at(sb: Any, clock_id: str | None, when: int, name: str, *args: Any) -> None:
    """Run timer ``name(sb, *args)`` once ``clock_id``'s time (or the sandbox's) reaches ``when``."""
    if name not in TIMERS:
        raise KeyError(name)
    key = _key(clock_id)
    heap: list[list[Any]] = sb.store.kv.get(key) or []
    seq = int(sb.store.kv.get("billing_timer_seq", 0)) + 1
    sb.store.set_kv("billing_timer_seq", seq)
    heapq.heappush(heap, [int(when), seq, name, list(args)])
    sb.store.set_kv(key, heap)
    if clock_id is None:
        sb.scheduler.at(when, "billing.run_due")


def at_once(sb: Any, clock_id: str | None, when: int, name: str, *args: Any) -> None:
    """``at``, unless the same timer (name and arguments) was already set: state changes may ask for the
    timers of the new state several times."""
    mark = f"timer_set:{clock_id}:{name}:{when}:{args!r}"
    if sb.store.kv.get(mark):
        return
    sb.store.set_kv(mark, True)
    at(sb, clock_id, when, name, *args)


def next_due(sb: Any, clock_id: str | None) -> int | None:
    heap = sb.store.kv.get(_key(clock_id)) or []
    return int(heap[0][0]) if heap else None


def pop_due(sb: Any, clock_id: str | None, until: int) -> tuple[int, str, list[Any]] | None:
    key = _key(clock_id)
    heap: list[list[Any]] = sb.store.kv.get(key) or []
    if not heap or heap[0][0] > until:
        return None
    when, _, name, args = heapq.heappop(heap)
    sb.store.set_kv(key, heap)
    return int(when), name, args


def run(sb: Any, name: str, args: list[Any]) -> None:
    try:
        TIMERS[name](sb, *args)
    except Exception:  # one broken timer must not stop a clock or the other timers
        log.exception("billing timer %s%r failed", name, args)


def run_clock(sb: Any, clock: dict[str, Any], until: int) -> int:
    """Run a test clock's due timers in time order, moving its frozen time to each one as it runs."""
    ran = 0
    while (due := pop_due(sb, clock["id"], until)) is not None:
        when, name, args = due
        if when > clock["frozen_time"]:
            clock["frozen_time"] = when
            sb.store.save(clock)
        run(sb, name, args)
        ran += 1
    return ran


def forget_clock(sb: Any, clock_id: str) -> None:
    sb.store.set_kv(_key(clock_id), [])


@job("billing.run_due")
def _run_sandbox_timeline(sb: Any) -> None:
    now = sb.clock.now_int()
    while (due := pop_due(sb, None, now)) is not None:
        run(sb, due[1], due[2])
    following = next_due(sb, None)
    if following is not None:
        sb.scheduler.at(following, "billing.run_due")


@on_start
def _resume_timeline(sb: Any) -> None:
    following = next_due(sb, None)
    if following is not None:
        sb.scheduler.at(following, "billing.run_due")

