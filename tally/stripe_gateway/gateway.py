"""``StripeGateway``: Tally's one Stripe client. A pinned API version, timeouts, network retries, named calls
(``payments``, ``billing``, ``account``) that answer plain dicts, and the caches of Stripe data, bounded and
living as long as the gateway (one per app; tests run several apps against several sandboxes in one process,
so nothing of one account's data is shared with another's)."""

from __future__ import annotations

from typing import TypeVar, cast

import stripe
from cachetools import LRUCache

from .account import AccountCalls
from .billing import BillingCalls
from .calls import Answer
from .payments import PaymentCalls
from .transport import StripeTransport

API_VERSION = "2026-10-28.endive"
SANDBOX_KEY = "sk_test_tally_sandbox"
# Prices are immutable in what Tally reads (amount, currency, recurring, metadata); a process meets a few per
# plan and pack, plus those of subscriptions made elsewhere (the dashboard): room for many times that.
PRICE_CACHE_SIZE = 1024

T = TypeVar("T")


class StripeGateway(PaymentCalls, BillingCalls, AccountCalls):
    def __init__(self, secret_key: str, api_base: str | None = None, *, timeout: float = 20.0,
                 max_network_retries: int = 2) -> None:
        self.max_network_retries = max_network_retries  # the SDK's retries of a failed request (same key)
        self._transport = StripeTransport(timeout)
        self._sdk = stripe.StripeClient(secret_key, stripe_version=API_VERSION,
                                        base_addresses={"api": api_base} if api_base else None,
                                        max_network_retries=max_network_retries, http_client=self._transport)
        self._prices: LRUCache[str, Answer] = LRUCache(maxsize=PRICE_CACHE_SIZE)
        self._owned: dict[type, object] = {}

    async def close(self) -> None:
        """At shutdown, in the loop that used the gateway: close its HTTP sessions."""
        await self._transport.close_async()

    async def cached_price(self, price_id: str) -> Answer:
        """The price, retrieved once (then from a bounded cache: ``PRICE_CACHE_SIZE``)."""
        found = self._prices.get(price_id)
        if found is None:
            found = self._prices[price_id] = await self.retrieve_price(price_id)
        return found

    def owned(self, kind: type[T]) -> T:
        """The one ``kind()`` of this gateway: state a domain keeps about this Stripe account (its price ids,
        its portal configuration), made on first use and dropped with the gateway."""
        found = self._owned.get(kind)
        if found is None:
            found = self._owned[kind] = kind()
        return cast(T, found)  # made by kind() above: the dict's value type cannot say it per key


def make_client(secret_key: str, api_base: str | None = None, *, timeout: float = 20.0,
                max_network_retries: int = 2) -> StripeGateway:
    """The gateway to the Stripe account of ``secret_key`` (at ``api_base``: the sandbox, when set)."""
    return StripeGateway(secret_key, api_base, timeout=timeout, max_network_retries=max_network_retries)


async def close_client(client: StripeGateway) -> None:
    await client.close()
