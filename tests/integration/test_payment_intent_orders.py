"""Credit orders paid by PaymentIntents (``/v1/orders``): cards, redirect methods through the sandbox's
authorize page, bank debits that settle later, declines. Real HTTP, real Postgres, the sandbox, and the
same fulfilment as Checkout (one ledger transaction, one invoice, whichever door gets there first)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, advance_sandbox_clock, authorize, checkout,
                                             new_user, order_row, processed_events, sdk, sql, wait_processed,
                                             wait_until)

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

RETURN_URL = "https://shop.example/paid?order=1"
SEPA_OK_LATER = "DE08370400440532013003"  # settles, three sandbox minutes after the usual delay
SEPA_FAILS = "DE62370400440532013001"


def _order(client: httpx.Client, pack_id: str, currency: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"pack_id": pack_id}
    if currency:
        body["currency"] = currency
    response = client.post("/v1/orders", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _confirm(client: httpx.Client, order_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/orders/{order_id}/confirm", json=body)


def _ledger_state(client: httpx.Client) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    return (client.get("/v1/credits").json()["balance"], client.get("/v1/credits/transactions").json()["data"],
            client.get("/v1/invoices").json()["data"])


def test_card_order_end_to_end(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        order = _order(client, "plus")
        assert (order["kind"], order["status"], order["amount"], order["currency"]) == \
            ("payment_intent", "pending", 999, "usd")
        assert order["session_id"] is None and order["payment_intent_id"] is None

        intent = client.post(f"/v1/orders/{order['order_id']}/payment-intent").json()
        assert set(intent) == {"order_id", "payment_intent_id", "client_secret", "payment_method_types", "status",
                               "order_status"}
        assert intent["payment_method_types"] == ["card", "us_bank_account", "alipay"]
        assert intent["status"] == "requires_payment_method" and intent["client_secret"].startswith(
            intent["payment_intent_id"] + "_secret_")
        # One PaymentIntent per order, however often it is asked for.
        again = client.post(f"/v1/orders/{order['order_id']}/payment-intent", json={}).json()
        assert again["payment_intent_id"] == intent["payment_intent_id"]
        pi = sdk(tally).v1.payment_intents.retrieve(intent["payment_intent_id"])
        assert pi.metadata["order_id"] == order["order_id"] and pi.metadata["user_id"] == user
        assert (pi.amount, pi.currency) == (999, "usd")

        confirmed = _confirm(client, order["order_id"], payment_method_id="pm_card_visa")
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json() == {"order_id": order["order_id"], "payment_intent_id": pi.id, "status": "succeeded",
                                    "order_status": "paid", "next_action": None, "failure_message": None}
        wait_processed(tally, pi.id, "payment_intent.succeeded")
        balance, txs, invoices = _ledger_state(client)
        assert balance == 1100 and len(txs) == 1
        assert txs[0]["amount"] == 1100 and txs[0]["order_id"] == order["order_id"]
        assert len(invoices) == 1 and (invoices[0]["amount"], invoices[0]["currency"]) == (999, "usd")
        assert re.fullmatch(r"INV-\d{4}-\d{6}", invoices[0]["number"])

        # An order that is already paid answers its paid state, and nothing is charged again.
        assert _confirm(client, order["order_id"], payment_method_id="pm_card_visa").json()["status"] == "succeeded"
        assert client.post(f"/v1/orders/{order['order_id']}/payment-intent").json()["order_status"] == "paid"
        read = client.get(f"/v1/orders/{pi.id}").json()
        assert (read["order_id"], read["status"], read["coins_added"]) == (order["order_id"], "paid", 1100)
        assert _ledger_state(client)[0] == 1100
        assert len(sdk(tally).v1.charges.list(params={"payment_intent": pi.id}).data) == 1


def test_myr_order_paid_with_grabpay_through_the_redirect_page(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        order = _order(client, "starter", "myr")
        assert (order["amount"], order["currency"]) == (2290, "myr")
        confirmed = _confirm(client, order["order_id"], payment_method_type="grabpay", return_url=RETURN_URL)
        assert confirmed.status_code == 200, confirmed.text
        body = confirmed.json()
        assert (body["status"], body["order_status"]) == ("requires_action", "pending")
        assert body["next_action"]["type"] == "redirect_to_url"
        assert body["next_action"]["redirect_url"].startswith(f"{tally.sandbox.url}/authorize/")

        back = authorize(body["next_action"]["redirect_url"])  # the buyer approves on GrabPay's page
        assert back.status_code == 303
        returned = urlsplit(back.headers["location"])
        assert returned.netloc == "shop.example"
        assert parse_qs(returned.query)["redirect_status"] == ["succeeded"]
        assert parse_qs(returned.query)["payment_intent"] == [body["payment_intent_id"]]

        # Fulfilled by the webhook (the order is looked at in the database, not through the API, which
        # would fulfil it on read).
        wait_processed(tally, body["payment_intent_id"], "payment_intent.succeeded")
        assert order_row(tally, order["order_id"])["status"] == "paid"
        balance, txs, invoices = _ledger_state(client)
        assert balance == 500 and len(txs) == 1
        assert [(i["amount"], i["currency"]) for i in invoices] == [(2290, "myr")]
        assert sdk(tally).v1.payment_intents.retrieve(body["payment_intent_id"]).payment_method_types == \
            ["card", "fpx", "grabpay", "alipay"]


def test_redirect_page_failure_fails_the_order_and_a_retry_pays(tally: Any) -> None:
    with tally.client(new_user()) as client:
        order = _order(client, "starter", "myr")
        first = _confirm(client, order["order_id"], payment_method_type="fpx", return_url=RETURN_URL).json()
        authorize(first["next_action"]["redirect_url"], action="fail")
        wait_processed(tally, first["payment_intent_id"], "payment_intent.payment_failed")
        failed = client.get(f"/v1/orders/{order['order_id']}").json()
        assert failed["status"] == "failed" and "failed authentication" in failed["failure_message"]

        retry = _confirm(client, order["order_id"], payment_method_type="grabpay", return_url=RETURN_URL).json()
        assert (retry["status"], retry["order_status"]) == ("requires_action", "pending")
        authorize(retry["next_action"]["redirect_url"])
        wait_until(lambda: order_row(tally, order["order_id"])["status"] == "paid", "paid after retry")
        assert client.get("/v1/credits").json()["balance"] == 500


def _sepa_method(tally: Any, iban: str) -> str:
    return sdk(tally).v1.payment_methods.create(params={
        "type": "sepa_debit", "sepa_debit": {"iban": iban},
        "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"}}).id


def test_eur_sepa_order_is_pending_until_the_debit_settles(tally: Any) -> None:
    with tally.client(new_user()) as client:
        order = _order(client, "pro", "eur")
        confirmed = _confirm(client, order["order_id"], payment_method_id=_sepa_method(tally, SEPA_OK_LATER))
        assert confirmed.status_code == 200, confirmed.text
        body = confirmed.json()
        assert (body["status"], body["order_status"], body["next_action"]) == ("processing", "pending", None)
        # payment_intent.processing arrives and is acknowledged: nothing to do until the money moves.
        acknowledged = ("payment_intent.processing", "ignored")
        wait_until(lambda: acknowledged in processed_events(tally, body["payment_intent_id"]),
                   "payment_intent.processing acknowledged")
        # Reading the order asks Stripe again: still processing, still pending, nothing credited.
        assert client.get(f"/v1/orders/{order['order_id']}").json()["status"] == "pending"
        assert client.get("/v1/credits").json()["balance"] == 0

        advance_sandbox_clock(tally, 200)  # the bank settles the debit
        wait_processed(tally, body["payment_intent_id"], "payment_intent.succeeded")
        assert order_row(tally, order["order_id"])["status"] == "paid"
        balance, txs, invoices = _ledger_state(client)
        assert balance == 3000 and len(txs) == 1
        assert [(i["amount"], i["currency"], i["customer_name"]) for i in invoices] == [(2299, "eur", "Jenny Rosen")]


def test_failing_iban_fails_the_order(tally: Any) -> None:
    with tally.client(new_user()) as client:
        order = _order(client, "starter", "eur")
        body = _confirm(client, order["order_id"], payment_method_id=_sepa_method(tally, SEPA_FAILS)).json()
        assert (body["status"], body["order_status"]) == ("processing", "pending")
        advance_sandbox_clock(tally, 5)
        wait_processed(tally, body["payment_intent_id"], "payment_intent.payment_failed")
        row = order_row(tally, order["order_id"])
        assert row["status"] == "failed" and row["failure_message"]
        assert client.get("/v1/credits").json()["balance"] == 0


def test_card_decline_leaves_the_order_failed_with_its_message(tally: Any) -> None:
    with tally.client(new_user()) as client:
        order = _order(client, "starter")
        declined = _confirm(client, order["order_id"], payment_method_id="pm_card_visa_chargeDeclined")
        assert declined.status_code == 402, declined.text
        error = declined.json()["error"]
        assert (error["type"], error["message"], error["decline_code"]) == \
            ("payment_failed", "Your card was declined.", "generic_decline")
        row = order_row(tally, order["order_id"])
        assert (row["status"], row["failure_message"]) == ("failed", "Your card was declined.")
        wait_processed(tally, row["stripe_payment_intent_id"], "payment_intent.payment_failed")
        after = client.get(f"/v1/orders/{order['order_id']}").json()
        assert (after["status"], after["failure_message"], after["coins_added"]) == \
            ("failed", "Your card was declined.", 0)
        assert client.get("/v1/credits").json()["balance"] == 0
        assert client.get("/v1/invoices").json()["data"] == []

        # The same order, a good card: paid, credited once.
        assert _confirm(client, order["order_id"], payment_method_id="pm_card_visa").json()["order_status"] == "paid"
        assert client.get("/v1/credits").json()["balance"] == 500


def test_bad_requests_write_nothing(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client, tally.client(new_user()) as other:
        jpy = client.post("/v1/orders", json={"pack_id": "starter", "currency": "jpy"})
        assert jpy.status_code == 400 and jpy.json()["error"]["message"] == \
            "The starter pack is not sold in JPY; it is sold in USD, EUR, GBP, MYR, SGD."
        assert client.post("/v1/orders", json={"pack_id": "nope"}).status_code == 400
        amount = client.post("/v1/orders", json={"pack_id": "starter", "amount": 1})
        assert amount.status_code == 400 and amount.json()["error"]["param"] == "amount"

        order = _order(client, "starter", "eur")
        oid = order["order_id"]
        cases = [
            ({}, "payment_method_type"),
            ({"payment_method_type": "sepa_debit"}, "payment_method_id"),  # needs the IBAN: a PaymentMethod
            ({"payment_method_type": "ideal"}, "return_url"),
            ({"payment_method_type": "grabpay", "return_url": RETURN_URL}, "payment_method_type"),
            ({"payment_method_id": "pm_card_visa", "payment_method_type": "ideal"}, "payment_method_type"),
            ({"payment_method_id": "pm_does_not_exist"}, "payment_method"),
            ({"payment_method_type": "ideal", "return_url": "javascript:alert(1)"}, "return_url"),
        ]
        for body, param in cases:
            response = _confirm(client, oid, **body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["param"] == param, (body, response.text)
        assert order_row(tally, oid)["stripe_payment_intent_id"] is None
        assert sql(tally, "SELECT count(*) FROM orders WHERE user_id = %s", user) == [(1,)]

        assert other.post(f"/v1/orders/{oid}/payment-intent").status_code == 403
        assert _confirm(other, oid, payment_method_id="pm_card_visa").status_code == 403
        assert client.post("/v1/orders/00000000-0000-4000-8000-000000000000/payment-intent").status_code == 404
        # A Checkout order is paid on its hosted page, not here.
        started = checkout(client, "starter")
        conflict = client.post(f"/v1/orders/{started['order_id']}/payment-intent")
        assert conflict.status_code == 409 and "checkout_url" in conflict.json()["error"]["message"]


def test_narrowed_methods_and_a_method_chosen_at_confirmation(tally: Any) -> None:
    with tally.client(new_user()) as client:
        order = _order(client, "starter", "myr")
        narrowed = client.post(f"/v1/orders/{order['order_id']}/payment-intent",
                               json={"payment_method_types": ["fpx"]}).json()
        assert narrowed["payment_method_types"] == ["fpx"]
        wide = client.post(f"/v1/orders/{order['order_id']}/payment-intent",
                           json={"payment_method_types": ["card", "grabpay"]}).json()
        assert wide["payment_method_types"] == ["card", "grabpay"]
        assert wide["payment_intent_id"] == narrowed["payment_intent_id"]
        # Alipay is allowed for MYR though not offered on this PaymentIntent any more: confirming adds it.
        body = _confirm(client, order["order_id"], payment_method_type="alipay", return_url=RETURN_URL).json()
        assert body["status"] == "requires_action"
        assert "alipay" in sdk(tally).v1.payment_intents.retrieve(body["payment_intent_id"]).payment_method_types
