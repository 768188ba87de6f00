"""Buying packs end to end: Tally's API → the sandbox's hosted Checkout → signed webhooks → the worker →
the ledger. No mock of Stripe anywhere."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import (DECLINED, STRIPE_HTTPX_WARNING, checkout, new_user, order_row, pay,
                                             processed_events, sdk, sql, wait_processed, wait_until)
from tests.webhook_signing import deliver

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def _order(client: httpx.Client, order_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/orders/{order_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_buy_a_pack_with_4242(tally: Any) -> None:
    user = new_user()
    with tally.client(user, f"{user}@example.com") as client:
        started = checkout(client, "plus")
        assert started["checkout_url"].startswith(tally.sandbox.url)
        assert pay(tally, started["session_id"]).status_code == 303
        # Credited by the webhook (not by reading the order): wait for the event, then look.
        wait_processed(tally, started["session_id"], "checkout.session.completed")
        order = _order(client, started["order_id"])
        assert order["status"] == "paid" and order["coins_added"] == 1100 and order["balance"] == 1100
        assert (order["amount"], order["currency"]) == (999, "usd")
        assert client.get("/v1/credits").json()["balance"] == 1100

        txs = client.get("/v1/credits/transactions").json()["data"]
        assert len(txs) == 1 and txs[0]["kind"] == "purchase" and txs[0]["amount"] == 1100
        entries = txs[0]["entries"]
        assert [{k: e[k] for k in ("kind", "amount", "balance_after")} for e in entries] == [
            {"kind": "coins", "amount": 1000, "balance_after": 1000},
            {"kind": "bonus", "amount": 100, "balance_after": 1100}]
        # The coins are a paid grant and the bonus a promotional one, each named by its entry.
        credits = client.get("/v1/credits").json()
        assert {g["id"]: (g["category"], g["remaining"]) for g in credits["grants"]} == {
            entries[0]["grant_id"]: ("paid", 1000), entries[1]["grant_id"]: ("promotional", 100)}
        assert credits["available"] == 1100 and credits["held"] == 0 and credits["expiring_soon"] == []

        invoices = client.get("/v1/invoices").json()["data"]
        assert len(invoices) == 1
        invoice = invoices[0]
        assert re.fullmatch(r"INV-\d{4}-\d{6}", invoice["number"]) and invoice["number"] == order["invoice_number"]
        assert (invoice["amount"], invoice["currency"], invoice["order_id"]) == (999, "usd", started["order_id"])
        assert invoice["customer_name"] == "Ada Lovelace" and invoice["customer_email"]
        assert invoice["lines"][0]["coins"] == 1000 and invoice["lines"][0]["bonus"] == 100

        # The order can be found by its Checkout Session id too.
        assert _order(client, started["session_id"])["order_id"] == started["order_id"]


def test_status_endpoint_fulfils_before_the_webhook(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
        try:
            started = checkout(client, "starter")
            pay(tally, started["session_id"])
            order = _order(client, started["order_id"])  # no webhook has arrived: fulfilled on read
            assert order["status"] == "paid" and order["balance"] == 500
        finally:
            httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")
        wait_processed(tally, started["session_id"], "checkout.session.completed")
        assert client.get("/v1/credits").json()["balance"] == 500
        assert len(client.get("/v1/credits/transactions").json()["data"]) == 1


def _events_for(tally: Any, object_id: str) -> dict[str, dict[str, Any]]:
    events = [e.to_dict() for e in sdk(tally).v1.events.list(params={"limit": 100}).data]
    return {e["type"]: e for e in events if e["data"]["object"].get("id") == object_id}


def test_duplicate_and_out_of_order_events_credit_once(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
        try:
            started = checkout(client, "pro")
            pay(tally, started["session_id"])
            session = _events_for(tally, started["session_id"])["checkout.session.completed"]
            pi_id = session["data"]["object"]["payment_intent"]
            pi_event = _events_for(tally, pi_id)["payment_intent.succeeded"]
            # payment_intent.succeeded first, then checkout.session.completed three times under distinct
            # event ids (the inbox dedupes equal ids; these must be deduped by the fulfilment itself).
            copies = [{**session, "id": f"{session['id']}_copy{i}"} for i in range(3)]
            statuses = asyncio.run(deliver(tally.url + "/v1/webhooks/stripe", [pi_event], tally.webhook_secret))
            assert statuses == [200]
            wait_processed(tally, pi_id, "payment_intent.succeeded")
            assert client.get("/v1/credits").json()["balance"] == 3000
            asyncio.run(deliver(tally.url + "/v1/webhooks/stripe", copies, tally.webhook_secret, concurrency=3))
        finally:
            httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")
        # The held originals arrive now, and once more by the sandbox's resend.
        httpx.post(f"{tally.sandbox.url}/_sandbox/events/{session['id']}/resend")
        wait_until(lambda: [s for t, s in processed_events(tally, started["session_id"])
                            if t == "checkout.session.completed"].count("processed") == 4, "all session events")
        assert client.get("/v1/credits").json()["balance"] == 3000
        assert len(client.get("/v1/credits/transactions").json()["data"]) == 1
        assert len(client.get("/v1/invoices").json()["data"]) == 1
        assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE order_id = %s",
                   started["order_id"]) == [(1,)]
        assert order_row(tally, started["order_id"])["stripe_payment_intent_id"] == pi_id


def test_declined_card_credits_nothing(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        started = checkout(client, "starter")
        assert pay(tally, started["session_id"], card=DECLINED).status_code == 402
        pi_id = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"]).payment_intent
        wait_processed(tally, pi_id, "payment_intent.payment_failed")
        order = _order(client, started["order_id"])
        assert order["status"] == "failed" and order["coins_added"] == 0 and order["failure_message"]
        assert client.get("/v1/credits").json()["balance"] == 0
        assert client.get("/v1/invoices").json()["data"] == []
        # The Checkout page stays usable: a second attempt with a good card still fulfils the order.
        assert pay(tally, started["session_id"]).status_code == 303
        wait_until(lambda: _order(client, started["order_id"])["status"] == "paid", "paid after retry")
        assert client.get("/v1/credits").json()["balance"] == 500


def test_expired_session_expires_the_order(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        started = checkout(client, "starter")
        sdk(tally).v1.checkout.sessions.expire(started["session_id"])
        wait_processed(tally, started["session_id"], "checkout.session.expired")
        order = _order(client, started["order_id"])
        assert order["status"] == "expired" and order["coins_added"] == 0
        assert client.get("/v1/credits").json()["balance"] == 0


def test_one_stripe_customer_per_user_under_concurrency(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client, ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: checkout(client, "starter"), range(6)))
    customers = {sdk(tally).v1.checkout.sessions.retrieve(r["session_id"]).customer for r in results}
    assert len(customers) == 1
    (customer_id,) = customers
    assert sql(tally, "SELECT stripe_customer_id FROM users WHERE id = %s", user) == [(customer_id,)]
    customer = sdk(tally).v1.customers.retrieve(customer_id)
    assert customer.metadata["user_id"] == user
