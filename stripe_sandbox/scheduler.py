"""Work due at a sandbox time (session expiry, delayed settlement), run by one background task.

Jobs are named functions registered at import time, so that a job is plain data (name, args).
Advancing the clock wakes the runner, which then runs everything that became due, in time order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("stripe_sandbox.scheduler")

JOBS: dict[str, Callable[..., None]] = {}


def job(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        JOBS[name] = fn
        return fn

    return register


class Scheduler:
    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self._heap: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self._counter = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def at(self, when: float, name: str, *args: Any) -> None:
        if name not in JOBS:
            raise KeyError(name)
        heapq.heappush(self._heap, (when, next(self._counter), name, args))
        self.wake()

    def after(self, seconds: float, name: str, *args: Any) -> None:
        self.at(self.sb.clock.now() + seconds, name, *args)

    def clear(self) -> None:
        self._heap.clear()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def run_due(self) -> int:
        """Run every job whose time has come; returns how many ran."""
        ran = 0
        now = self.sb.clock.now()
        while self._heap and self._heap[0][0] <= now:
            _, _, name, args = heapq.heappop(self._heap)
            try:
                JOBS[name](self.sb, *args)
            except Exception:  # one broken job must not stop the others
                log.exception("scheduled job %s%r failed", name, args)
            ran += 1
        return ran

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self.run_due()
            timeout = 1.0
            if self._heap:
                timeout = max(0.0, min(timeout, self._heap[0][0] - self.sb.clock.now()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
