"""The one module that talks to Stripe: a single ``StripeClient`` with a pinned API version, timeouts,
network retries, and idempotency keys derived from Tally's own record ids.

With no Stripe key configured the same client points at the offline sandbox that ``tally serve``
starts; nothing else in Tally knows the difference.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import stripe

from .errors import PaymentFailed, UpstreamUnavailable

API_VERSION = "2026-10-28.endive"
SANDBOX_KEY = "sk_test_tally_sandbox"


class StripeTransport(stripe.HTTPXClient):
    """The SDK's HTTP client: aiohttp (the SDK's own ``AIOHTTPClient``) for async calls, which is every call
    Tally makes, and httpx for the few synchronous ones (scripts, tests). aiohttp costs about 1.1 ms less CPU
    per call than httpx's async client on the 2-core bench VM, on every checkout, webhook re-fetch and
    reconciliation call (bench/checkout.py). An aiohttp session belongs to the event loop it was made in, and
    the CLI and the tests run several loops: one session per loop."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout, allow_sync_methods=True)
        self._total_timeout = timeout
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, stripe.AIOHTTPClient] = \
            weakref.WeakKeyDictionary()

    def _async_client(self) -> stripe.AIOHTTPClient:
        loop = asyncio.get_running_loop()
        client = self._per_loop.get(loop)
        if client is None:
            client = self._per_loop[loop] = stripe.AIOHTTPClient(
                timeout=aiohttp.ClientTimeout(total=self._total_timeout))
        return client

    async def request_async(self, method: str, url: str, headers: Mapping[str, str],
                            post_data: Any = None) -> tuple[bytes, int, Mapping[str, str]]:
        return await self._async_client().request_async(method, url, headers, post_data)

    async def request_stream_async(self, method: str, url: str, headers: Mapping[str, str],
                                   post_data: Any = None) -> Any:
        return await self._async_client().request_stream_async(method, url, headers, post_data)

    async def close_async(self) -> None:
        """Close this loop's aiohttp session (and httpx's async client)."""
        client = self._per_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close_async()
        await super().close_async()


_transports: weakref.WeakKeyDictionary[stripe.StripeClient, StripeTransport] = weakref.WeakKeyDictionary()


def make_client(secret_key: str, api_base: str | None = None, *, timeout: float = 20.0,
                max_network_retries: int = 2) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else None
    transport = StripeTransport(timeout)
    client = stripe.StripeClient(
        secret_key,
        stripe_version=API_VERSION,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=max_network_retries,
        http_client=transport,
    )
    _transports[client] = transport
    return client


async def close_client(client: stripe.StripeClient) -> None:
    """At shutdown, in the loop that used the client: close its HTTP sessions."""
    transport = _transports.get(client)
    if transport is not None:
        await transport.close_async()


def idempotency_key(kind: str, record_id: object, action: str) -> str:
    """Keys from our own ids: a retried request after a crash or timeout is the same Stripe request."""
    return f"tally:{kind}:{record_id}:{action}"


def update_key(kind: str, object_id: str, params: dict[str, Any]) -> str:
    """The key of an update: the object and what it is set to. Stripe keeps a key for 24 hours and refuses it
    with other parameters, so the same change retried is one request, and a later different change (the same
    field set to something else) gets a key of its own."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return idempotency_key(kind, object_id, f"update:{digest}")


@asynccontextmanager
async def stripe_call(what: str) -> AsyncIterator[None]:
    """Map Stripe's failures to Tally's errors: unreachable or 5xx/429 → 503 (safe to retry);
    a card decline → 402 with Stripe's message."""
    try:
        yield
    except stripe.CardError as exc:
        raise PaymentFailed(exc.user_message or str(exc), code=exc.code,
                            decline_code=getattr(exc.error, "decline_code", None)) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise UpstreamUnavailable(
            f"The payment provider is unavailable ({what}); nothing was charged, please retry.") from exc
