"""The gateway's own logic, without Stripe: the one id helper, and the caches of Stripe data it owns (bounded,
one set per gateway)."""

from __future__ import annotations

import asyncio
from typing import Any

from tally.stripe_gateway import SANDBOX_KEY, StripeGateway, object_id
from tally.stripe_gateway.gateway import PRICE_CACHE_SIZE


def test_object_id_reads_an_id_or_an_expanded_object() -> None:
    assert object_id("pi_1") == "pi_1"
    assert object_id({"id": "pi_1", "object": "payment_intent"}) == "pi_1"
    assert [object_id(v) for v in (None, "", {}, {"id": None}, 7)] == [None] * 5


class CountingGateway(StripeGateway):
    """A gateway whose price retrieval answers from memory and counts the requests it would have made."""

    def __init__(self) -> None:
        super().__init__(SANDBOX_KEY, "http://127.0.0.1:9")
        self.retrieved: list[str] = []

    async def retrieve_price(self, price_id: str) -> dict[str, Any]:
        self.retrieved.append(price_id)
        return {"id": price_id, "object": "price"}


def test_a_price_is_retrieved_once_and_the_cache_is_bounded() -> None:
    gateway = CountingGateway()

    async def run() -> None:
        assert (await gateway.cached_price("price_a"))["id"] == "price_a"
        await gateway.cached_price("price_a")
        assert gateway.retrieved == ["price_a"]
        for n in range(PRICE_CACHE_SIZE):  # price_a is now the least recently used: pushed out
            await gateway.cached_price(f"price_{n}")
        await gateway.cached_price("price_a")
        assert gateway.retrieved.count("price_a") == 2

    asyncio.run(run())


def test_owned_state_is_one_per_gateway() -> None:
    class Remembered(dict[str, str]):
        pass

    first, second = CountingGateway(), CountingGateway()
    first.owned(Remembered)["k"] = "v"
    assert first.owned(Remembered) is first.owned(Remembered) == {"k": "v"}
    assert second.owned(Remembered) == {}
