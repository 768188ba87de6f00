"""Holds over HTTP: reserve, capture part, release the rest; idempotent by key; a hold ends exactly once,
whatever races to end it (two captures, capture against release, capture against expiry); 50 holds racing
for a balance that covers 20; spends never take held credits."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, checkout, new_user, pay, sql, wait_until

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def funded(tally: Any, pack: str = "starter", coins: int = 500) -> tuple[str, dict[str, str]]:
    user = new_user()
    with tally.client(user) as client:
        pay(tally, checkout(client, pack)["session_id"])
        wait_until(lambda: client.get("/v1/credits").json()["balance"] == coins, "funded")
        return user, dict(client.headers)


def credits(tally: Any, user: str) -> dict[str, Any]:
    with tally.client(user) as client:
        return client.get("/v1/credits").json()


def test_hold_capture_part_release_the_rest(tally: Any) -> None:
    user, _ = funded(tally)
    with tally.client(user) as client:
        held = client.post("/v1/credits/holds", json={"amount": 200, "idempotency_key": "render-1",
                                                      "reason": "render"})
        assert held.status_code == 201, held.text
        hold = held.json()
        assert (hold["status"], hold["amount"], hold["available"]) == ("held", 200, 300)
        assert credits(tally, user) | {"grants": None} == {"balance": 500, "available": 300, "held": 200,
                                                           "grants": None, "expiring_soon": []}
        # A spend takes only what is not held.
        too_much = client.post("/v1/credits/spend", json={"amount": 301, "reason": "x", "idempotency_key": "s1"})
        assert too_much.status_code == 409 and too_much.json()["error"]["type"] == "insufficient_credits"

        captured = client.post(f"/v1/credits/holds/{hold['id']}/capture", json={"amount": 120}).json()
        assert (captured["status"], captured["captured"], captured["released"]) == ("captured", 120, 80)
        assert (captured["balance"], captured["available"]) == (380, 380)
        assert client.get(f"/v1/credits/holds/{hold['id']}").json()["status"] == "captured"
        tx = client.get("/v1/credits/transactions").json()["data"][0]
        assert (tx["kind"], tx["amount"], tx["description"]) == ("spend", -120, "render")
    assert credits(tally, user)["held"] == 0


def test_hold_is_idempotent_by_key(tally: Any) -> None:
    user, _ = funded(tally)
    with tally.client(user) as client:
        body = {"amount": 100, "idempotency_key": "job-7"}
        first = client.post("/v1/credits/holds", json=body)
        again = client.post("/v1/credits/holds", json=body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        other = client.post("/v1/credits/holds", json={"amount": 101, "idempotency_key": "job-7"})
        assert other.status_code == 409 and other.json()["error"]["type"] == "conflict"
    assert credits(tally, user)["held"] == 100


def test_release_gives_everything_back_and_ends_the_hold(tally: Any) -> None:
    user, _ = funded(tally)
    with tally.client(user) as client:
        hold = client.post("/v1/credits/holds", json={"amount": 500, "idempotency_key": "all"}).json()
        assert hold["available"] == 0
        released = client.post(f"/v1/credits/holds/{hold['id']}/release").json()
        assert (released["status"], released["released"], released["available"]) == ("released", 500, 500)
        late = client.post(f"/v1/credits/holds/{hold['id']}/capture", json={})
        assert late.status_code == 409 and late.json()["error"]["hold"]["status"] == "released"


def test_bad_holds_are_refused_with_nothing_changed(tally: Any) -> None:
    user, _ = funded(tally)
    with tally.client(user) as client:
        short = client.post("/v1/credits/holds", json={"amount": 501, "idempotency_key": "big"})
        assert short.status_code == 409 and short.json()["error"]["type"] == "insufficient_credits"
        for bad in ({"amount": 0, "idempotency_key": "z"}, {"amount": 5, "idempotency_key": "z",
                                                             "expires_in_seconds": 7 * 24 * 3600 + 1},
                    {"amount": 5, "idempotency_key": "z", "expires_in_seconds": 0}, {"amount": 5}):
            assert client.post("/v1/credits/holds", json=bad).status_code == 400, bad
        hold = client.post("/v1/credits/holds", json={"amount": 50, "idempotency_key": "ok"}).json()
        over = client.post(f"/v1/credits/holds/{hold['id']}/capture", json={"amount": 51})
        assert over.status_code == 400 and over.json()["error"]["param"] == "amount"
        assert client.get("/v1/credits/holds/hold_doesnotexist").status_code == 404
    other = new_user()
    with tally.client(other) as stranger:  # another user's hold does not exist for them
        assert stranger.post(f"/v1/credits/holds/{hold['id']}/capture", json={}).status_code == 404
    assert credits(tally, user)["held"] == 50


async def _race(tally: Any, headers: dict[str, str], requests: list[tuple[str, str, dict[str, Any] | None]]
                ) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=tally.url, headers=headers, timeout=30) as client:
        return await asyncio.gather(*(client.request(method, path, json=body) for method, path, body in requests))


def test_two_captures_and_capture_against_release_end_a_hold_once(tally: Any) -> None:
    user, headers = funded(tally)
    with tally.client(user) as client:
        holds = [client.post("/v1/credits/holds", json={"amount": 100, "idempotency_key": f"r{i}"}).json()["id"]
                 for i in range(2)]
    twice = asyncio.run(_race(tally, headers, [("POST", f"/v1/credits/holds/{holds[0]}/capture", {})] * 6))
    assert sorted(r.status_code for r in twice) == [200] + [409] * 5
    assert all(r.json()["error"]["hold"]["status"] == "captured" for r in twice if r.status_code == 409)
    mixed = asyncio.run(_race(tally, headers, [("POST", f"/v1/credits/holds/{holds[1]}/capture", {}),
                                               ("POST", f"/v1/credits/holds/{holds[1]}/release", None)] * 3))
    winners = [r.json()["status"] for r in mixed if r.status_code == 200]
    assert len(winners) == 1 and sorted(r.status_code for r in mixed) == [200] + [409] * 5
    spent = 100 + (100 if winners == ["captured"] else 0)
    assert credits(tally, user) | {"grants": None} == {"balance": 500 - spent, "available": 500 - spent, "held": 0,
                                                       "grants": None, "expiring_soon": []}
    assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE user_id = %s AND kind = 'spend'",
               user) == [(1 if winners == ["released"] else 2,)]


def test_capture_against_expiry(tally: Any) -> None:
    """A hold past its time cannot be captured, whether the worker has expired it yet or not."""
    user, _ = funded(tally)
    with tally.client(user) as client:
        hold = client.post("/v1/credits/holds", json={"amount": 100, "idempotency_key": "short",
                                                      "expires_in_seconds": 1}).json()
        wait_until(lambda: datetime.fromisoformat(hold["expires_at"]) < datetime.now().astimezone(), "past its time")
        late = client.post(f"/v1/credits/holds/{hold['id']}/capture", json={})
        assert late.status_code == 409 and late.json()["error"]["hold"]["status"] == "expired"
        assert client.get("/v1/credits").json()["available"] == 500
        # The worker releases the ones nobody touches.
        other = client.post("/v1/credits/holds", json={"amount": 100, "idempotency_key": "forgotten",
                                                       "expires_in_seconds": 1}).json()
        wait_until(lambda: client.get(f"/v1/credits/holds/{other['id']}").json()["status"] == "expired",
                   "expired by the worker", timeout=30)
        assert client.get("/v1/credits").json()["held"] == 0


def test_fifty_holds_race_for_a_balance_that_covers_twenty(tally: Any) -> None:
    user, headers = funded(tally)  # 500 credits: 20 holds of 25
    responses = asyncio.run(_race(tally, headers, [
        ("POST", "/v1/credits/holds", {"amount": 25, "idempotency_key": f"race-{i}"}) for i in range(50)]))
    assert sorted(r.status_code for r in responses) == [201] * 20 + [409] * 30
    assert credits(tally, user)["held"] == 500 and credits(tally, user)["available"] == 0
    assert sql(tally, "SELECT count(*), sum(amount) FROM credit_holds WHERE user_id = %s AND status = 'held'",
               user) == [(20, 500)]
