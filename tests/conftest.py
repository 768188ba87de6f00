"""Shared fixtures: an in-process Stripe sandbox and an SDK client pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import stripe

from stripe_sandbox import SandboxConfig, SandboxServer
from tests.stripe_shapes import checked_client

# Rate limits (tally.security) stay on in every test server, but the suite sends thousands of requests from
# 127.0.0.1 within minutes: raise them for the run. tests/security sets low limits explicitly to test them.
for _limit in ("TALLY_RATE_LIMIT_USER", "TALLY_RATE_LIMIT_IP", "TALLY_RATE_LIMIT_API_KEY", "TALLY_RATE_LIMIT_LOGIN"):
    os.environ.setdefault(_limit, "100000/minute")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(port=0, async_settle_seconds=0.5)) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_client(sandbox: SandboxServer) -> stripe.StripeClient:
    """The SDK pointed at the session's sandbox; every successful answer is shape-checked (tests.stripe_shapes)."""
    return checked_client(sandbox.url)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from tests.tally_harness import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def tally(database_url: str):  # type: ignore[no-untyped-def]
    """The real Tally over HTTP, with its own sandbox and an in-process worker."""
    from tests.tally_harness import TallyServer

    with TallyServer(database_url) as server:
        yield server
