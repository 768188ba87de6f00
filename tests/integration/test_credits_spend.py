"""Spending credits: atomic, idempotent, never below zero — also under 20 concurrent requests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, checkout, new_user, pay, sql, wait_until

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def _fund(tally: Any, client: httpx.Client) -> None:
    started = checkout(client, "starter")  # 500 coins
    pay(tally, started["session_id"])
    wait_until(lambda: client.get("/v1/credits").json()["balance"] == 500, "funded")


def test_twenty_concurrent_spends_against_ten_spends_of_balance(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        _fund(tally, client)
        headers = dict(client.headers)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=tally.url, headers=headers, timeout=30) as aclient:
            return await asyncio.gather(*(aclient.post("/v1/credits/spend", json={
                "amount": 50, "reason": "burst", "idempotency_key": f"burst-{i}"}) for i in range(20)))

    responses = asyncio.run(burst())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [409] * 10
    assert all(r.json()["error"]["type"] == "insufficient_credits" for r in responses if r.status_code == 409)
    balances_after = sorted(r.json()["balance"] for r in responses if r.status_code == 200)
    assert balances_after == list(range(0, 500, 50))  # every step of the way, each exactly once
    with tally.client(user) as client:
        assert client.get("/v1/credits").json()["balance"] == 0
    assert sql(tally, "SELECT min(balance_after) FROM ledger_entries e JOIN wallet_balances w "
                      "ON w.account_id = e.account_id WHERE w.user_id = %s", user) == [(0,)]


def test_spend_is_idempotent_by_key(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        _fund(tally, client)
        body = {"amount": 120, "reason": "sword", "idempotency_key": "order-77"}
        first = client.post("/v1/credits/spend", json=body)
        again = client.post("/v1/credits/spend", json=body)
        assert first.status_code == again.status_code == 200
        assert first.json()["replayed"] is False and again.json()["replayed"] is True
        assert first.json()["transaction_id"] == again.json()["transaction_id"]
        assert again.json()["balance"] == 380 and client.get("/v1/credits").json()["balance"] == 380
        reused = client.post("/v1/credits/spend", json={**body, "amount": 121})
        assert reused.status_code == 409 and reused.json()["error"]["param"] == "idempotency_key"
        # Keys are per user: another user's same key is their own spend.
        other = new_user()
        with tally.client(other) as other_client:
            refused = other_client.post("/v1/credits/spend", json=body)
            assert refused.status_code == 409 and refused.json()["error"]["type"] == "insufficient_credits"
            assert refused.json()["error"]["balance"] == 0  # never credited: no wallet, nothing to spend
        # A refused spend leaves nothing behind, so the same key can succeed later.
        assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE user_id = %s", other) == [(0,)]


def test_the_api_key_spends_for_a_named_user(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        _fund(tally, client)
    with tally.admin_client() as admin:
        spent = admin.post("/v1/credits/spend", headers={"Tally-User-Id": user},
                           json={"amount": 5, "reason": "server side", "idempotency_key": "s-1"})
        assert spent.status_code == 200 and spent.json()["balance"] == 495


@pytest.mark.parametrize("body", [
    {"amount": 0, "reason": "r", "idempotency_key": "k"},
    {"amount": -5, "reason": "r", "idempotency_key": "k"},
    {"amount": 1.5, "reason": "r", "idempotency_key": "k"},
    {"amount": "10", "reason": "r", "idempotency_key": "k"},
    {"amount": True, "reason": "r", "idempotency_key": "k"},
    {"amount": 10**13, "reason": "r", "idempotency_key": "k"},
    {"amount": 5, "reason": "", "idempotency_key": "k"},
    {"amount": 5, "reason": "r"},
    {"amount": 5, "reason": "r", "idempotency_key": "has space"},
    {"amount": 5, "reason": "r", "idempotency_key": "k" * 256},
    {"amount": 5, "reason": "r", "idempotency_key": "k", "user_id": "someone-else"},
    [1, 2],
])
def test_bad_spend_bodies_are_400_and_write_nothing(tally: Any, body: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        response = client.post("/v1/credits/spend", json=body)
        assert response.status_code == 400, response.text
        assert set(response.json()["error"]) >= {"type", "message", "param"}
    assert sql(tally, "SELECT count(*) FROM users WHERE id = %s", user) == [(0,)]


def test_spending_needs_a_signed_in_user(tally: Any) -> None:
    with tally.client() as anonymous:
        response = anonymous.post("/v1/credits/spend", json={"amount": 1, "reason": "r", "idempotency_key": "k"})
        assert response.status_code == 401 and response.json()["error"]["type"] == "unauthenticated"


def test_transactions_are_paginated_newest_first(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        _fund(tally, client)
        for i in range(4):
            client.post("/v1/credits/spend", json={"amount": 10 + i, "reason": f"r{i}", "idempotency_key": f"p{i}"})
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = client.get("/v1/credits/transactions", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
            body = page.json()
            seen += body["data"]
            if not body["has_more"]:
                break
            cursor = body["next_cursor"]
        assert [t["amount"] for t in seen] == [-13, -12, -11, -10, 500]
        assert [t["balance_after"] for t in seen] == [454, 467, 479, 490, 500]
        assert client.get("/v1/credits/transactions", params={"cursor": "abc"}).status_code == 400
        assert client.get("/v1/credits/transactions", params={"limit": 0}).status_code == 400
        assert client.get("/v1/invoices", params={"limit": 1}).json()["has_more"] is False


def test_a_spend_after_the_database_ended_every_connection_goes_through_once(tally: Any) -> None:
    """A restart or failover kills every pooled connection. The spend statement is atomic and its reference
    unique, so the route tries once more on a fresh connection: one 200, one debit."""
    user = new_user()
    with tally.client(user) as client:
        _fund(tally, client)
        assert client.post("/v1/credits/spend", json={"amount": 1, "reason": "warm", "idempotency_key": "w"}
                           ).status_code == 200  # the direct pool now holds a live connection
        ended = sql(tally, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert ended[0][0] > 0
        answer = client.post("/v1/credits/spend", json={"amount": 10, "reason": "after", "idempotency_key": "a"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["balance"] == 489 and client.get("/v1/credits").json()["balance"] == 489
    assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE user_id = %s AND kind = 'spend'",
               user) == [(2,)]
