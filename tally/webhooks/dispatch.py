"""From event type to handler: a plain registry that domains fill with ``@handles(...)``.

A handler is ``async def handler(ctx: HandlerContext, event: dict) -> None``. It runs inside the one
transaction that also marks the inbox row processed, so its writes and the done flag commit together.
It never commits; it raises to fail (the job is retried with backoff, then the event is marked failed).
Events whose type has no handler are acknowledged and recorded as ``ignored``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..errors import StartupError
from ..stripe_gateway import StripeGateway

# Domain modules whose import registers handlers; imported when the API or a worker starts (load_handlers).
HANDLER_MODULES: tuple[str, ...] = ("tally.orders.handlers", "tally.subscriptions.handlers",
                                    "tally.reversals.handlers")
# Extra handler modules, comma-separated (plug-ins, tests, the benchmark): set it on API and worker processes.
EXTRA_HANDLER_MODULES_ENV = "TALLY_HANDLER_MODULES"


@dataclass(frozen=True)
class HandlerContext:
    session: AsyncSession  # inside the transaction that flips the inbox row to processed
    stripe: StripeGateway
    settings: Settings
    event_id: str


Handler = Callable[[HandlerContext, dict[str, Any]], Awaitable[None]]
H = TypeVar("H", bound=Handler)

HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[H], H]:
    """Register the decorated coroutine for ``event_types``. One handler per type: a second, different
    function for the same type is a programming error, found at import time rather than in production."""

    def register(fn: H) -> H:
        for event_type in event_types:
            existing = HANDLERS.get(event_type)
            if existing is not None and _qualname(existing) != _qualname(fn):
                raise RuntimeError(f"{event_type} is already handled by {_qualname(existing)}")
            HANDLERS[event_type] = fn
        return fn

    return register


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


_loaded: set[str] = set()


def handler_modules() -> tuple[str, ...]:
    extra = [m.strip() for m in os.environ.get(EXTRA_HANDLER_MODULES_ENV, "").split(",") if m.strip()]
    return HANDLER_MODULES + tuple(extra)


def load_handlers() -> dict[str, Handler]:
    """Import every handler module once. Called when the API and the workers start: a module named in
    TALLY_HANDLER_MODULES that cannot be imported (a typo, a missing dependency, a broken module) stops
    them there, since otherwise every event of its types would be recorded as ``ignored``, which is final."""
    for name in handler_modules():
        if name in _loaded:
            continue
        if name in HANDLER_MODULES:
            importlib.import_module(name)  # Tally's own: a failure is a bug, with its traceback
        else:
            _import_extra(name)
        _loaded.add(name)
    return HANDLERS


class HandlerModuleError(StartupError):
    """A module named in TALLY_HANDLER_MODULES cannot be imported."""


def _import_extra(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - whatever the import raised, the module's handlers are missing
        reason = f"{type(exc).__name__}: {exc}"
        raise HandlerModuleError(
            f"cannot import the handler module {name!r} named in {EXTRA_HANDLER_MODULES_ENV} ({reason}); its "
            f"events would be recorded as ignored. Fix the name or the module (it must be importable from "
            f"this process's PYTHONPATH), or remove it from {EXTRA_HANDLER_MODULES_ENV}") from exc


def handler_for(event_type: str) -> Handler | None:
    return load_handlers().get(event_type)
