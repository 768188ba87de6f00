"""Who may see an order, and bad checkout requests: 403 for another user's order, 404 for an unknown
one, 4xx with nothing written for a bad body."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, checkout, new_user, sql

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def test_another_users_order_is_forbidden_and_unknown_is_404(tally: Any) -> None:
    owner, stranger = new_user(), new_user()
    with tally.client(owner) as client:
        started = checkout(client)
        assert client.get(f"/v1/orders/{started['order_id']}").status_code == 200
    with tally.client(stranger) as client:
        for ref in (started["order_id"], started["session_id"]):
            response = client.get(f"/v1/orders/{ref}")
            assert response.status_code == 403 and response.json()["error"]["type"] == "forbidden"
        for ref in (str(uuid.uuid4()), "cs_test_doesnotexist", "not-an-id", "1"):
            response = client.get(f"/v1/orders/{ref}")
            assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
    with tally.client() as anonymous:
        assert anonymous.get(f"/v1/orders/{started['order_id']}").status_code == 401


@pytest.mark.parametrize("body", [
    {},
    {"pack_id": ""},
    {"pack_id": "no-such-pack"},
    {"pack_id": 5},
    {"pack_id": "starter", "amount": 1},  # a client never sends a price
    {"pack_id": "starter", "currency": "jpy"},  # a currency the catalog does not price the pack in
    {"pack_id": "starter", "success_url": "javascript:alert(1)"},
    {"pack_id": "starter", "cancel_url": "/relative"},
    {"pack_id": "starter", "success_url": "https://x.example/" + "a" * 2100},
    ["starter"],
])
def test_bad_checkout_bodies_are_400_and_write_nothing(tally: Any, body: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        response = client.post("/v1/checkout", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request" and error["message"]
    assert sql(tally, "SELECT count(*) FROM orders WHERE user_id = %s", user) == [(0,)]


def test_non_json_checkout_is_400(tally: Any) -> None:
    with tally.client(new_user()) as client:
        response = client.post("/v1/checkout", content=b"pack_id=starter",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400


def test_checkout_answers_the_catalog_price_and_custom_urls(tally: Any) -> None:
    from tests.integration.purchase_flow import sdk

    user = new_user()
    with tally.client(user) as client:
        response = client.post("/v1/checkout", json={
            "pack_id": "mega", "success_url": "https://app.example/ok?s={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/cancel"})
        assert response.status_code == 200
        started = response.json()
    session = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"])
    assert (session.amount_total, session.currency) == (9999, "usd")
    assert session.metadata["order_id"] == started["order_id"] and session.metadata["user_id"] == user
    assert session.success_url == "https://app.example/ok?s={CHECKOUT_SESSION_ID}"
    assert sql(tally, "SELECT status, amount, coins, bonus FROM orders WHERE id = %s",
               started["order_id"]) == [("pending", 9999, 10000, 3000)]
