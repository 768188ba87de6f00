"""The SDK's HTTP transport: aiohttp for the async calls Tally makes, httpx for the few synchronous ones."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

import aiohttp
import stripe


class StripeTransport(stripe.HTTPXClient):
    """The SDK's HTTP client: aiohttp (the SDK's own ``AIOHTTPClient``) for async calls, which is every call
    Tally makes, and httpx for the few synchronous ones (scripts, tests). aiohttp costs less CPU per call
    than httpx's async client, on every checkout, webhook re-fetch and reconciliation call (measured by
    bench/checkout.py; the figures are in the README's Benchmarks section). An aiohttp session belongs to the event loop it was made in, and
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
