"""The drop-in routes for existing frontends: exactly the request bodies those frontends send, exactly the
response shapes they read, and full purchases through each route ending in the right balance,
transactions and invoice. Real HTTP, real Postgres, the sandbox; no mock of Stripe."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, authorize, new_user, pay, sdk, sql,
                                             wait_processed, wait_until)
from tests.integration.subscription_flow import plan_prices
from tests.tally_harness import TallyServer
from tests.webhook_signing import deliver, make_event

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

SUCCESS_URL = "https://shop.example/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/pricing"
FRONTEND = "https://shop.example"


def _family_error(response: httpx.Response, status: int) -> str:
    """The ``/api/stripe`` family's error shape, exactly; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "error"} and body["success"] is False and set(body["error"]) == {"message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


def _tally_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"type", "message", "param"} <= set(body["error"])
    return dict(body["error"])


def _ledger(client: httpx.Client) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    return (client.get("/v1/credits").json()["balance"], client.get("/v1/credits/transactions").json()["data"],
            client.get("/v1/invoices").json()["data"])


# -- /api/payment -------------------------------------------------------------------------------------
def test_payment_checkout_session_full_purchase(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        response = client.post("/api/payment/create-checkout-session", json={
            "price_usd": 9.99, "coins": 1000, "bonus": 100, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL})
        assert response.status_code == 200, response.text
        started = response.json()
        assert set(started) == {"session_id", "checkout_url"}
        assert started["checkout_url"].startswith(tally.sandbox.url)
        session = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"])
        assert session.success_url == SUCCESS_URL and session.cancel_url == CANCEL_URL  # placeholder kept intact
        assert (session.amount_total, session.currency) == (999, "usd")

        status = client.get(f"/api/payment/status/{started['session_id']}")
        assert status.status_code == 200
        assert status.json() == {"status": "pending", "session_id": started["session_id"], "coins_added": None,
                                 "new_balance": None}

        paid = pay(tally, started["session_id"])
        assert paid.status_code == 303
        assert paid.headers["location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", started["session_id"])
        wait_processed(tally, started["session_id"], "checkout.session.completed")
        assert client.get(f"/api/payment/status/{started['session_id']}").json() == {
            "status": "completed", "session_id": started["session_id"], "coins_added": 1100, "new_balance": 1100}
        balance, txs, invoices = _ledger(client)
        assert balance == 1100 and [t["amount"] for t in txs] == [1100]
        assert [(i["amount"], i["currency"]) for i in invoices] == [(999, "usd")]


def test_payment_checkout_refuses_client_chosen_prices(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        for body in ({"price_usd": 0.01, "coins": 1000, "bonus": 100},  # a cheaper price
                     {"price_usd": 9.99, "coins": 100000, "bonus": 100},  # more coins
                     {"price_usd": 9.99, "coins": 1000, "bonus": 5000},  # more bonus
                     {"price_usd": "9.991", "coins": 1000, "bonus": 100}):  # a fraction of a cent
            response = client.post("/api/payment/create-checkout-session",
                                   json={**body, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL})
            error = _tally_error(response, 400)
            assert error["message"].startswith("Client-chosen prices are refused")
            assert all(pack in error["message"] for pack in ("starter", "plus", "pro", "mega"))
        assert _tally_error(client.post("/api/payment/create-checkout-session", json={"coins": 5}), 400)[
            "param"] == "price_usd"
    assert sql(tally, "SELECT count(*) FROM orders WHERE user_id = %s", user) == [(0,)]


def test_payment_status_access(tally: Any) -> None:
    with tally.client(new_user()) as owner, tally.client(new_user()) as other:
        started = owner.post("/api/payment/create-checkout-session", json={
            "price_usd": 4.99, "coins": 500, "bonus": 0, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}).json()
        assert _tally_error(other.get(f"/api/payment/status/{started['session_id']}"), 403)["type"] == "forbidden"
        assert _tally_error(owner.get("/api/payment/status/cs_test_unknown"), 404)["type"] == "not_found"
        with tally.client() as anonymous:
            assert _tally_error(anonymous.get(f"/api/payment/status/{started['session_id']}"), 401)
        sdk(tally).v1.checkout.sessions.expire(started["session_id"])
        wait_processed(tally, started["session_id"], "checkout.session.expired")
        assert owner.get(f"/api/payment/status/{started['session_id']}").json()["status"] == "expired"


def test_api_key_proxy_names_the_user_in_the_body(tally: Any) -> None:
    user = new_user()
    with tally.admin_client() as server:
        response = server.post("/api/payment/create-checkout-session", json={
            "price_usd": "4.99", "coins": 500, "bonus": 0, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL,
            "user_id": user})
        assert response.status_code == 200, response.text
        assert sql(tally, "SELECT user_id FROM orders WHERE stripe_checkout_session_id = %s",
                   response.json()["session_id"]) == [(user,)]
        # Without a user the API key cannot act.
        assert server.post("/api/payment/create-checkout-session", json={
            "price_usd": "4.99", "coins": 500, "bonus": 0}).status_code == 400


# -- /api/stripe/create-checkout-session ----------------------------------------------------------------
def test_stripe_checkout_session_by_lookup_key_and_by_price_id(tally: Any) -> None:
    user = new_user()
    with tally.client(user, f"{user}@example.com") as client:
        by_key = client.post("/api/stripe/create-checkout-session", json={
            "priceId": "tally_pack_starter", "userId": user, "userEmail": f"{user}@example.com",
            "successUrl": SUCCESS_URL, "cancelUrl": CANCEL_URL})
        assert by_key.status_code == 200, by_key.text
        body = by_key.json()
        assert set(body) == {"success", "data"} and body["success"] is True
        assert set(body["data"]) == {"sessionId", "url"} and body["data"]["url"].startswith(tally.sandbox.url)
        assert sdk(tally).v1.checkout.sessions.retrieve(body["data"]["sessionId"]).success_url == SUCCESS_URL

        price_id = sdk(tally).v1.prices.list(params={"lookup_keys": ["tally_pack_pro"]}).data[0].id
        by_price = client.post("/api/stripe/create-checkout-session", json={
            "priceId": price_id, "userId": user, "userEmail": f"{user}@example.com",
            "successUrl": SUCCESS_URL, "cancelUrl": CANCEL_URL}).json()
        assert by_price["success"] is True
        session_id = by_price["data"]["sessionId"]
        assert pay(tally, session_id).status_code == 303
        wait_processed(tally, session_id, "checkout.session.completed")
        balance, txs, invoices = _ledger(client)
        assert balance == 3000 and len(txs) == 1
        assert [(i["amount"], i["currency"]) for i in invoices] == [(2499, "usd")]


def test_stripe_checkout_session_refusals(tally: Any) -> None:
    user = new_user()
    base = {"userId": user, "userEmail": f"{user}@example.com", "successUrl": SUCCESS_URL, "cancelUrl": CANCEL_URL}
    with tally.client(user) as client:
        message = _family_error(client.post("/api/stripe/create-checkout-session",
                                            json={**base, "priceId": "price_made_up_by_the_client"}), 400)
        assert "not in the catalog" in message and "tally_pack_starter" in message
        # A price that exists in Stripe but is not the catalog's (made in the dashboard, say).
        foreign = sdk(tally).v1.prices.create(params={"currency": "usd", "unit_amount": 1,
                                                      "product_data": {"name": "Cheap coins"}})
        assert "not in the catalog" in _family_error(client.post(
            "/api/stripe/create-checkout-session", json={**base, "priceId": foreign.id}), 400)
        assert "signed-in user" in _family_error(client.post(
            "/api/stripe/create-checkout-session", json={**base, "userId": "someone-else", "priceId": "plus"}), 403)
        assert "priceId" in _family_error(client.post("/api/stripe/create-checkout-session", json=base), 400)
        assert _family_error(client.post("/api/stripe/create-checkout-session", content=b"{not json",
                                         headers={"Content-Type": "application/json"}), 400)
    with tally.client() as anonymous:
        _family_error(anonymous.post("/api/stripe/create-checkout-session", json={**base, "priceId": "plus"}), 401)
    assert sql(tally, "SELECT count(*) FROM orders WHERE user_id = %s", user) == [(0,)]


def test_stripe_checkout_session_with_the_api_key(tally: Any) -> None:
    user = new_user()
    with tally.admin_client() as server:
        response = server.post("/api/stripe/create-checkout-session", json={
            "priceId": "tally_pack_plus", "userId": user, "userEmail": "proxy@example.com",
            "successUrl": SUCCESS_URL, "cancelUrl": CANCEL_URL})
        assert response.status_code == 200, response.text
    session = sdk(tally).v1.checkout.sessions.retrieve(response.json()["data"]["sessionId"])
    customer = sdk(tally).v1.customers.retrieve(str(session.customer))
    assert customer.metadata["user_id"] == user and customer.email == "proxy@example.com"


# -- /api/business/credit-orders + PaymentIntents --------------------------------------------------------
def test_credit_order_paid_through_a_payment_intent(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        created = client.post("/api/business/credit-orders", json={"planId": "pro"})
        assert created.status_code == 200, created.text
        order = created.json()
        assert order == {"id": order["orderId"], "orderId": order["orderId"], "planId": "pro", "status": "pending",
                         "amount": 2499, "currency": "usd", "coins": 2500, "bonus": 500}

        intent = client.post("/api/stripe/create-payment-intent", json={"orderId": order["orderId"]})
        assert intent.status_code == 200, intent.text
        pi = intent.json()
        assert set(pi) == {"clientSecret", "paymentIntentId", "paymentMethodTypes"}
        assert pi["paymentMethodTypes"] == ["card", "us_bank_account", "alipay"]
        assert pi["clientSecret"].startswith(pi["paymentIntentId"] + "_secret_")
        # Idempotent per order.
        assert client.post("/api/stripe/create-payment-intent",
                           json={"orderId": order["orderId"]}).json()["paymentIntentId"] == pi["paymentIntentId"]

        confirmed = client.post("/api/stripe/confirm-payment", json={
            "paymentIntentId": pi["paymentIntentId"], "paymentMethodType": "alipay",
            "returnUrl": "https://shop.example/orders/done"})
        assert confirmed.status_code == 200, confirmed.text
        body = confirmed.json()
        assert set(body) == {"status", "nextAction"} and body["status"] == "requires_action"
        assert body["nextAction"]["type"] == "alipay_handle_redirect"  # Stripe's own type for Alipay
        assert body["nextAction"]["redirectUrl"].startswith(f"{tally.sandbox.url}/authorize/")

        assert authorize(body["nextAction"]["redirectUrl"]).status_code == 303
        wait_processed(tally, pi["paymentIntentId"], "payment_intent.succeeded")
        balance, txs, invoices = _ledger(client)
        assert balance == 3000 and len(txs) == 1
        assert [(i["amount"], i["currency"], i["order_id"]) for i in invoices] == [(2499, "usd", order["orderId"])]

        # Already paid: its paid state, not an error, and no second charge.
        again = client.post("/api/stripe/confirm-payment", json={
            "paymentIntentId": pi["paymentIntentId"], "paymentMethodType": "alipay",
            "returnUrl": "https://shop.example/orders/done"})
        assert again.status_code == 200 and again.json() == {"status": "succeeded"}
        assert _ledger(client)[0] == 3000


def test_credit_order_card_payment_and_decline(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        order = client.post("/api/business/credit-orders", json={"planId": "starter"}).json()
        pi = client.post("/api/stripe/create-payment-intent",
                         json={"orderId": order["orderId"], "paymentMethodTypes": ["card"]}).json()
        assert pi["paymentMethodTypes"] == ["card"]
        declined = client.post("/api/stripe/confirm-payment", json={
            "paymentIntentId": pi["paymentIntentId"], "paymentMethodId": "pm_card_visa_chargeDeclined",
            "paymentMethodType": "card", "returnUrl": "https://shop.example/done"})
        assert _family_error(declined, 402) == "Your card was declined."
        assert client.get(f"/v1/orders/{order['orderId']}").json()["failure_message"] == "Your card was declined."

        paid = client.post("/api/stripe/confirm-payment", json={
            "paymentIntentId": pi["paymentIntentId"], "paymentMethodId": "pm_card_visa",
            "paymentMethodType": "card", "returnUrl": "https://shop.example/done"})
        assert paid.status_code == 200 and paid.json() == {"status": "succeeded"}
        wait_processed(tally, pi["paymentIntentId"], "payment_intent.succeeded")
        balance, txs, invoices = _ledger(client)
        assert balance == 500 and len(txs) == 1 and len(invoices) == 1


def test_credit_order_refusals_use_the_family_shape(tally: Any) -> None:
    with tally.client(new_user()) as client, tally.client(new_user()) as other:
        assert "No such pack" in _family_error(client.post("/api/business/credit-orders", json={"planId": "x"}), 400)
        myr = client.post("/api/business/credit-orders", json={"planId": "starter", "currency": "myr"}).json()
        assert (myr["amount"], myr["currency"]) == (2290, "myr")
        message = _family_error(client.post("/api/stripe/create-payment-intent", json={
            "orderId": myr["orderId"], "paymentMethodTypes": ["sepa_debit"]}), 400)
        assert message == "sepa_debit is not offered for MYR; allowed: card, fpx, grabpay, alipay."
        assert "retired it in 2025" in _family_error(client.post("/api/stripe/create-payment-intent", json={
            "orderId": myr["orderId"], "paymentMethodTypes": ["sofort"]}), 400)
        _family_error(other.post("/api/stripe/create-payment-intent", json={"orderId": myr["orderId"]}), 403)
        _family_error(client.post("/api/stripe/confirm-payment", json={
            "paymentIntentId": "pi_unknown", "paymentMethodType": "grabpay", "returnUrl": "https://x.example"}), 404)


# -- webhooks at the guides' paths --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/payment/webhook", "/api/stripe/webhook"])
def test_webhook_aliases_are_the_same_receiver(tally: Any, path: str) -> None:
    event = make_event("tally.test.noop")
    assert httpx.post(tally.url + path, json=event).status_code == 400  # unsigned: refused, nothing stored
    assert sql(tally, "SELECT count(*) FROM webhook_events WHERE id = %s", event["id"]) == [(0,)]
    statuses = asyncio.run(deliver(tally.url + path, [event, event], tally.webhook_secret, concurrency=1))
    assert statuses == [200, 200]
    assert sql(tally, "SELECT count(*) FROM webhook_events WHERE id = %s", event["id"]) == [(1,)]


# -- CORS, the setting, recurring prices: a second Tally with its own configuration ------------------------
@pytest.fixture(scope="module")
def configured(module_database_url: str) -> Iterator[TallyServer]:
    with TallyServer(module_database_url, TALLY_CORS_ORIGINS=f"{FRONTEND}, http://localhost:5173") as server:
        yield server


def test_cors_preflight_from_a_configured_origin(configured: TallyServer) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with httpx.Client(base_url=configured.url) as browser:
        allowed = browser.options("/api/stripe/create-checkout-session", headers={"Origin": FRONTEND, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == FRONTEND
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = browser.options("/api/stripe/create-checkout-session",
                                  headers={"Origin": "https://evil.example", **preflight})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        # The actual request carries the header for the frontend, errors included.
        user = new_user()
        real = browser.post("/api/business/credit-orders", json={"planId": "nope"},
                            headers={"Origin": "http://localhost:5173",
                                     "Authorization": f"Bearer {configured.token(user)}"})
        assert real.status_code == 400 and real.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_recurring_plan_price_starts_a_subscription_checkout(tally: Any) -> None:
    user = new_user()
    price_id = plan_prices(tally)["plan:pro:month"]
    with tally.client(user) as client:
        started = client.post("/api/stripe/create-checkout-session", json={
            "priceId": price_id, "userId": user, "userEmail": f"{user}@example.com", "successUrl": SUCCESS_URL,
            "cancelUrl": CANCEL_URL})
        assert started.status_code == 200, started.text
        data = started.json()["data"]
        session = sdk(tally).v1.checkout.sessions.retrieve(data["sessionId"])
        assert session.mode == "subscription" and session.url == data["url"]
        assert pay(tally, data["sessionId"]).status_code in (200, 303)
        wait_until(lambda: client.get("/v1/subscription").json()["status"] == "active", "the subscription")
        assert client.get("/v1/subscription").json()["plan"] == "pro"
        # One subscription per user; by lookup key the answer is the same refusal.
        again = client.post("/api/stripe/create-checkout-session", json={"priceId": "plan:basic:year",
                                                                         "userId": user})
        assert again.status_code == 409 and again.json()["success"] is False


def test_a_price_that_is_neither_a_pack_nor_a_plan_is_a_clear_400(configured: TallyServer) -> None:
    user = new_user()
    with configured.client(user) as client:
        for price in ("monthly", "tally_plan_monthly"):
            message = _family_error(client.post("/api/stripe/create-checkout-session", json={
                "priceId": price, "userId": user, "userEmail": f"{user}@example.com", "successUrl": SUCCESS_URL,
                "cancelUrl": CANCEL_URL}), 400)
            assert "not in the catalog" in message and "GET /v1/plans" in message


def test_compat_routes_can_be_turned_off(database_url: str) -> None:
    with TallyServer(database_url, run_worker=False, TALLY_COMPAT_ROUTES="false") as server, server.client(new_user()) as client:
        assert client.post("/api/stripe/create-checkout-session", json={"priceId": "plus"}).status_code == 404
        assert client.get("/api/payment/status/cs_test_x").status_code == 404
        assert client.get("/v1/catalog").status_code == 200


def test_settling_time_is_not_needed_for_card_checkout_status(tally: Any) -> None:
    """The status route fulfils on read when the webhook is late, like GET /v1/orders."""
    with tally.client(new_user()) as client:
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
        try:
            started = client.post("/api/payment/create-checkout-session", json={
                "price_usd": 4.99, "coins": 500, "bonus": 0, "success_url": SUCCESS_URL,
                "cancel_url": CANCEL_URL}).json()
            pay(tally, started["session_id"])
            status = client.get(f"/api/payment/status/{started['session_id']}").json()
            assert (status["status"], status["coins_added"], status["new_balance"]) == ("completed", 500, 500)
        finally:
            httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")
        wait_until(lambda: client.get("/v1/credits/transactions").json()["data"], "transactions")
        assert client.get("/v1/credits").json()["balance"] == 500
