"""Helpers for sandbox tests: a private sandbox, and the sandbox-only control API (which has no SDK call)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import stripe

from stripe_sandbox import SandboxConfig, SandboxServer
from tests.stripe_shapes import checked_client
from tests.waiting import poll


@contextmanager
def private_sandbox(**config: Any) -> Iterator[tuple[SandboxServer, stripe.StripeClient]]:
    """A sandbox of its own, for tests that count events or deliveries (the session's one is shared).
    Retries are compressed to fractions of a second unless a test says otherwise."""
    config.setdefault("webhook_retry_delays", (0.2, 0.4))
    config.setdefault("webhook_timeout", 1.0)
    config.setdefault("webhook_url", None)
    config.setdefault("webhook_secret", None)
    with SandboxServer(SandboxConfig(port=0, **config)) as server:
        yield server, client_for(server)


def client_for(server: SandboxServer) -> stripe.StripeClient:
    """Every successful answer it gets is shape-checked (tests.stripe_shapes.checked_client)."""
    return checked_client(server.url)


def control(server: SandboxServer, method: str, path: str, **body: Any) -> Any:
    if method == "GET":
        response = httpx.get(server.url + path, params=body)
    else:
        response = httpx.request(method, server.url + path, json=body)
    return response.json() if response.status_code == 200 else (response.status_code, response.json())


def deliveries(server: SandboxServer, **filters: str) -> list[dict[str, Any]]:
    return control(server, "GET", "/_sandbox/deliveries", **filters)["data"]


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    return poll(predicate, timeout=timeout, what=what, every=0.02)
