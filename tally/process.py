"""Process-wide matters of the long-running processes (`tally serve`, `tally worker`, and the benchmarks' API):
tuning of the garbage collector, and stopping cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Coroutine, Iterator
from typing import Any


def freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, the app, its routes, SQLAlchemy's metadata: over a
    hundred thousand objects) out of the garbage collector's reach. They live as long as the process, yet every
    full collection walked them all, and meanwhile no request was answered and no event processed
    (bench/webhooks.py's receipt latency showed those stalls; README, "Benchmarks")."""
    gc.collect()
    gc.freeze()


# -- stopping on SIGTERM / SIGINT ------------------------------------------------------------------------------
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """SIGTERM arrived (what systemd, `docker stop` and process managers send). A BaseException, as
    KeyboardInterrupt is for SIGINT, so that no ``except Exception`` on the way swallows it."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped()


@contextlib.contextmanager
def stopped_cleanly() -> Iterator[None]:
    """Around a long-running command: SIGTERM and SIGINT unwind it (its ``finally`` blocks stop what it
    started) and the process then exits with status 0, as a requested stop is no failure. uvicorn, which
    handles both signals itself, re-raises them through these handlers once it has shut down."""
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        yield
    except (Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


async def run_until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` on the running loop until it ends or SIGTERM/SIGINT arrives, which cancels it (its
    ``finally`` blocks run on the loop, as they would not if the signal interrupted the loop itself)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)  # remove_signal_handler leaves the default, not the handler before
