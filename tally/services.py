"""What a running Tally process works with: its settings, database, Stripe client and webhook secrets. Built by
``tally.runtime`` (or by tests); the web app keeps it for its routes (``tally.deps``), and background tasks
reach the services of the process that runs them through ``current_services``."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .db import Database
from .stripe_gateway import StripeGateway


@dataclass
class Services:
    """What the app needs at run time, built by ``tally.runtime`` (or by tests)."""

    settings: Settings
    db: Database
    stripe: StripeGateway
    webhook_secrets: list[str]  # signing secrets accepted on /v1/webhooks/stripe (two while rotating)
    run_worker: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# Tasks reach the database and Stripe through the services of the process that runs them.
_services: contextvars.ContextVar[Services] = contextvars.ContextVar("tally_services")


@contextlib.contextmanager
def bind_services(services: Services) -> Iterator[None]:
    token = _services.set(services)
    try:
        yield
    finally:
        _services.reset(token)


def current_services() -> Services:
    return _services.get()
