"""One user can never read or change another's orders, credits, invoices or subscription — on every route.

An owner buys a pack (Checkout), starts a PaymentIntent order and subscribes; a stranger then calls every
route against the owner's objects, and every answer is a refusal or the stranger's own (empty) data, with the
owner's state unchanged. Each test names the routes it covers with ``@covers``; ``test_every_route_is_covered``
lists the app's routes and fails for any route that is neither covered nor declared public with a reason,
so a new route cannot ship without its cross-user test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, pay, sql, wait_until)

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

COVERED: set[str] = set()

# Routes with no user data, each with the reason; anything else must be covered by a test below.
PUBLIC = {
    "GET /metrics": "operator metrics: counts by route and status, no user ids",
    "POST /dev/login": "issues a token for the id it is given (sandbox mode only; refused with a Stripe key)",
    "POST /v1/webhooks/stripe": "Stripe only: signature-checked (test_webhook_signatures)",
    "POST /api/payment/webhook": "Stripe only: signature-checked (test_webhook_signatures)",
    "POST /api/stripe/webhook": "Stripe only: signature-checked (test_webhook_signatures)",
    "GET /v1/catalog": "the public price list",
    "GET /v1/payment-methods": "the public list of payment methods",
    "GET /v1/plans": "the public plan list",
    "GET /healthz": "liveness",
    "GET /docs": "the API reference page (Swagger UI, served by Tally: fastapi-offline)",
    "GET /docs/oauth2-redirect": "Swagger UI's OAuth2 redirect page (static)",
    "GET /redoc": "the API reference page (ReDoc, served by Tally: fastapi-offline)",
    "GET /signin": "the sign-in form",
    "POST /signin": "sandbox demo sign-in form (CSRF-checked)",
    "GET /signin/token": "signs in the token's own user only (token verified)",
    "POST /signout": "forgets the caller's own session",
    "GET /pricing": "the public pricing page (shows the caller's own name only)",
    "GET /": "the public pricing page",
    "GET /admin/login": "the operator's sign-in form",
    "POST /admin/login": "takes the API key or an admin JWT (rate limited as a login)",
    "POST /admin/logout": "forgets the operator's own session",
    "GET /admin/admin.css": "a stylesheet",
}


def covers(*routes: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    COVERED.update(routes)
    return lambda test: test


# -- the owner's world -----------------------------------------------------------------------------------
@dataclass
class World:
    owner: str
    stranger: str
    paid_order: str
    paid_session: str
    pi_order: str
    payment_intent: str
    invoice_number: str
    subscription: dict[str, Any]
    balance: int
    owner_portal: str


@pytest.fixture(scope="module")
def world(tally: Any) -> World:
    owner, stranger = new_user(), new_user()
    with tally.client(owner, f"{owner}@example.com") as client:
        started = checkout(client)
        assert pay(tally, started["session_id"]).status_code in (200, 303)
        wait_until(lambda: client.get(f"/v1/orders/{started['order_id']}").json()["status"] == "paid", "paid")
        invoices = wait_until(lambda: client.get("/v1/invoices").json()["data"], "an invoice")
        pi_order = client.post("/v1/orders", json={"pack_id": "starter"}).json()["order_id"]
        intent = client.post(f"/v1/orders/{pi_order}/payment-intent", json={})
        assert intent.status_code == 200, intent.text
        subscribed = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic", "interval": "month"})
        assert subscribed.status_code == 200, subscribed.text
        assert pay(tally, subscribed.json()["session_id"]).status_code in (200, 303)
        subscription = wait_until(lambda: (lambda s: s if s["status"] == "active" else None)(
            client.get("/v1/subscription").json()), "an active subscription")
        balance = wait_until(lambda: (lambda b: b if b > 1000 else None)(client.get("/v1/credits").json()["balance"]),
                             "pack and subscription credits")
        portal = client.post("/v1/portal")
        assert portal.status_code == 200, portal.text
    return World(owner, stranger, started["order_id"], started["session_id"], pi_order,
                 intent.json()["payment_intent_id"], invoices[0]["number"], subscription, balance,
                 portal.json()["url"])


def owner_state(tally: Any, world: World) -> tuple[Any, ...]:
    """Everything of the owner's that a stranger might try to change."""
    with tally.client(world.owner) as client:
        return (client.get("/v1/credits").json()["balance"],
                client.get("/v1/subscription").json(),
                sql(tally, "SELECT id, status, stripe_payment_intent_id FROM orders WHERE user_id = %s ORDER BY id",
                    world.owner),
                len(client.get("/v1/invoices").json()["data"]))


@contextmanager
def unchanged(tally: Any, world: World) -> Iterator[None]:
    before = owner_state(tally, world)
    yield
    assert owner_state(tally, world) == before


def refused(response: httpx.Response) -> None:
    """Another user's object: 403 or 404 (never its data), in either error shape."""
    assert response.status_code in (403, 404), response.text
    body = response.json()
    message = body["error"]["message"]
    assert message and "client_secret" not in response.text


# -- orders -------------------------------------------------------------------------------------------------
@covers("GET /v1/orders/{order_id}", "POST /v1/orders/{order_id}/payment-intent",
        "POST /v1/orders/{order_id}/confirm")
def test_anothers_orders_cannot_be_read_paid_or_confirmed(tally: Any, world: World) -> None:
    with unchanged(tally, world), tally.client(world.stranger) as client:
        for ref in (world.paid_order, world.paid_session, world.pi_order, world.payment_intent):
            refused(client.get(f"/v1/orders/{ref}"))
        for ref in (world.pi_order, world.paid_order):
            refused(client.post(f"/v1/orders/{ref}/payment-intent", json={}))
            refused(client.post(f"/v1/orders/{ref}/confirm", json={"payment_method_id": "pm_card_visa"}))
            refused(client.post(f"/v1/orders/{ref}/confirm", json={"payment_method_type": "alipay"}))


@covers("POST /v1/checkout", "POST /v1/orders", "POST /v1/subscriptions/checkout")
def test_new_orders_belong_to_the_caller_whatever_they_claim(tally: Any, world: World) -> None:
    """The user is the token's: a Tally-User-Id header is ignored, a user id in the body refused."""
    with unchanged(tally, world), tally.client(world.stranger) as client:
        as_owner = {"Tally-User-Id": world.owner}
        made = [client.post("/v1/checkout", json={"pack_id": "starter"}, headers=as_owner).json()["order_id"],
                client.post("/v1/orders", json={"pack_id": "starter"}, headers=as_owner).json()["order_id"]]
        for path, body in (("/v1/checkout", {"pack_id": "starter"}), ("/v1/orders", {"pack_id": "starter"}),
                           ("/v1/subscriptions/checkout", {"plan_id": "basic"})):
            assert client.post(path, json={**body, "user_id": world.owner}).status_code == 400
        sub = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic"}, headers=as_owner)
        assert sub.status_code == 200, sub.text  # the stranger has no subscription: theirs to start
    owners = {r[0]: r[1] for r in sql(tally, "SELECT id::text, user_id FROM orders WHERE id::text = ANY(%s)", made)}
    assert owners == {m: world.stranger for m in made}


# -- credits and invoices -------------------------------------------------------------------------------------
@covers("GET /v1/credits", "GET /v1/credits/transactions", "POST /v1/credits/spend", "GET /v1/invoices")
def test_anothers_credits_and_invoices_cannot_be_read_or_spent(tally: Any, world: World) -> None:
    key = uuid.uuid4().hex  # the owner's own spend key: the stranger's use of it is the stranger's spend
    with tally.client(world.owner) as owner:
        assert owner.post("/v1/credits/spend", json={"amount": 1, "reason": "own",
                                                     "idempotency_key": key}).status_code == 200
    with unchanged(tally, world), tally.client(world.stranger) as client:
        as_owner = {"Tally-User-Id": world.owner}
        assert client.get("/v1/credits", headers=as_owner).json()["balance"] == 0
        assert client.get("/v1/credits/transactions", headers=as_owner).json()["data"] == []
        assert client.get("/v1/invoices", headers=as_owner).json()["data"] == []
        spent = client.post("/v1/credits/spend", headers=as_owner, json={
            "amount": 1, "reason": "steal", "idempotency_key": uuid.uuid4().hex})
        assert spent.status_code == 409 and spent.json()["error"]["type"] == "insufficient_credits"
        stolen = client.post("/v1/credits/spend", json={"amount": 1, "reason": "steal", "user_id": world.owner,
                                                        "idempotency_key": uuid.uuid4().hex})
        assert stolen.status_code == 400
        again = client.post("/v1/credits/spend", json={"amount": 1, "reason": "own", "idempotency_key": key})
        assert again.status_code == 409 and again.json()["error"]["type"] == "insufficient_credits"


@covers("POST /v1/credits/holds", "GET /v1/credits/holds/{hold_id}", "POST /v1/credits/holds/{hold_id}/capture",
        "POST /v1/credits/holds/{hold_id}/release")
def test_anothers_holds_cannot_be_read_captured_or_released(tally: Any, world: World) -> None:
    with tally.client(world.owner) as owner:
        made = owner.post("/v1/credits/holds", json={"amount": 1, "idempotency_key": uuid.uuid4().hex})
        assert made.status_code == 201, made.text
        hold = made.json()["id"]
    before = owner_state(tally, world)
    with tally.client(world.stranger) as client:
        as_owner = {"Tally-User-Id": world.owner}
        refused(client.get(f"/v1/credits/holds/{hold}", headers=as_owner))
        refused(client.post(f"/v1/credits/holds/{hold}/capture", json={}, headers=as_owner))
        refused(client.post(f"/v1/credits/holds/{hold}/release", headers=as_owner))
        held = client.post("/v1/credits/holds", headers=as_owner, json={"amount": 1, "idempotency_key": "x"})
        assert held.status_code == 409 and held.json()["error"]["type"] == "insufficient_credits"
    assert owner_state(tally, world) == before
    with tally.client(world.owner) as owner:
        assert owner.get(f"/v1/credits/holds/{hold}").json()["status"] == "held"
        assert owner.post(f"/v1/credits/holds/{hold}/release").json()["status"] == "released"


# -- subscription -------------------------------------------------------------------------------------------
@covers("GET /v1/subscription", "POST /v1/subscription/change", "POST /v1/subscription/cancel",
        "POST /v1/subscription/resume", "POST /v1/portal")
def test_anothers_subscription_cannot_be_read_changed_or_managed(tally: Any, world: World) -> None:
    with unchanged(tally, world), tally.client(world.stranger) as client:
        as_owner = {"Tally-User-Id": world.owner}
        assert client.get("/v1/subscription", headers=as_owner).json()["status"] == "none"
        for path, body in (("/v1/subscription/change", {"plan_id": "pro"}),
                           ("/v1/subscription/cancel", {"immediately": True}), ("/v1/subscription/resume", None)):
            assert client.post(path, json=body, headers=as_owner).status_code == 404
        portal = client.post("/v1/portal", headers=as_owner)
        assert portal.status_code == 200 and portal.json()["url"] != world.owner_portal
        page = httpx.get(portal.json()["url"], follow_redirects=True, timeout=30)
        assert page.status_code == 200 and world.owner not in page.text and world.invoice_number not in page.text


@covers("GET /billing/portal/{token}")
def test_the_emailed_portal_link_cannot_be_forged(tally: Any, world: World) -> None:
    """The link is a capability for one customer: unsigned, tampered, or signed with the users' JWT secret
    (a user could mint that one themselves if the keys were shared) — all 404."""
    import time

    import jwt

    customer = sql(tally, "SELECT stripe_customer_id FROM users WHERE id = %s", world.owner)[0][0]
    assert customer
    claims = {"cus": customer, "exp": int(time.time()) + 600}
    for token in ("x", "a" * 40, jwt.encode(claims, tally.settings.jwt_secret, algorithm="HS256"),
                  jwt.encode(claims, "guessed-link-key-" + "g" * 32, algorithm="HS256"),
                  f"{jwt.encode(claims, tally.settings.jwt_secret, algorithm='HS256').rsplit('.', 1)[0]}."):
        response = httpx.get(f"{tally.url}/billing/portal/{token}", timeout=30)
        assert response.status_code == 404, token


# -- compatibility routes --------------------------------------------------------------------------------------
@covers("POST /api/payment/create-checkout-session", "GET /api/payment/status/{session_id}",
        "POST /api/stripe/create-checkout-session", "POST /api/business/credit-orders",
        "POST /api/stripe/create-payment-intent", "POST /api/stripe/confirm-payment")
def test_the_compat_routes_refuse_anothers_user_id_and_objects(tally: Any, world: World) -> None:
    with unchanged(tally, world), tally.client(world.stranger) as client:
        forbidden = [
            client.post("/api/payment/create-checkout-session", json={
                "price_usd": 9.99, "coins": 1000, "bonus": 0, "user_id": world.owner}),
            client.post("/api/stripe/create-checkout-session", json={"priceId": "starter", "userId": world.owner}),
            client.post("/api/business/credit-orders", json={"planId": "starter", "userId": world.owner}),
            client.post("/api/stripe/create-payment-intent", json={"orderId": world.pi_order, "userId": world.owner}),
            client.post("/api/stripe/confirm-payment", json={"paymentIntentId": world.payment_intent,
                                                             "paymentMethodId": "pm_card_visa",
                                                             "userId": world.owner})]
        for response in forbidden:
            assert response.status_code == 403, response.text
        refused(client.get(f"/api/payment/status/{world.paid_session}"))
        refused(client.post("/api/stripe/create-payment-intent", json={"orderId": world.pi_order}))
        refused(client.post("/api/stripe/confirm-payment", json={"paymentIntentId": world.payment_intent,
                                                                 "paymentMethodId": "pm_card_visa"}))


# -- pages ----------------------------------------------------------------------------------------------------
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def browser_of(tally: Any, user: str) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=tally.url, timeout=30) as client:
        assert client.get("/signin/token", params={"token": tally.token(user), "next": "/account"}).status_code == 303
        token = CSRF.search(client.get("/account").text)
        assert token
        yield client, token.group(1)


@covers("GET /account", "GET /account/invoices/{number}.pdf", "GET /checkout/success", "GET /checkout/status",
        "GET /checkout/cancel")
def test_pages_show_only_the_signed_in_users_data(tally: Any, world: World) -> None:
    with unchanged(tally, world), browser_of(tally, world.stranger) as (client, _):
        account = client.get("/account")
        assert account.status_code == 200
        for secret in (world.paid_order, world.invoice_number, world.owner, world.payment_intent):
            assert secret not in account.text
        assert client.get(f"/account/invoices/{world.invoice_number}.pdf").status_code in (403, 404)
        for path in ("/checkout/success", "/checkout/status"):
            response = client.get(path, params={"session_id": world.paid_session})
            assert response.status_code in (403, 404) and world.paid_order not in response.text
        cancel = client.get("/checkout/cancel", params={"order_id": world.paid_order})
        assert cancel.status_code in (403, 404) and world.paid_order not in cancel.text
    with browser_of(tally, world.owner) as (client, _):  # the owner does see them (the refusals are real)
        assert world.invoice_number in client.get("/account").text
        assert client.get(f"/account/invoices/{world.invoice_number}.pdf").status_code == 200


@covers("POST /checkout", "POST /subscribe", "POST /subscription/change", "POST /account/billing")
def test_page_forms_act_only_for_the_signed_in_user(tally: Any, world: World) -> None:
    stranger = new_user()  # a fresh one: no subscription, no orders
    with unchanged(tally, world), browser_of(tally, stranger) as (client, csrf):
        made = client.post("/checkout", data={"csrf_token": csrf, "pack_id": "starter", "user_id": world.owner})
        assert made.status_code == 303
        change = client.post("/subscription/change", data={"csrf_token": csrf, "plan_id": "pro"})
        assert change.status_code in (400, 404, 409)
        billing = client.post("/account/billing", data={"csrf_token": csrf})
        assert billing.status_code == 303 and billing.headers["location"] != world.owner_portal
        subscribe = client.post("/subscribe", data={"csrf_token": csrf, "plan_id": "basic", "user_id": world.owner})
        assert subscribe.status_code == 303
    assert sql(tally, "SELECT count(*) FROM orders WHERE user_id = %s", stranger) == [(1,)]
    assert sql(tally, "SELECT count(*) FROM subscription_checkouts WHERE user_id = %s", world.owner) == [(1,)]


# -- operator routes ----------------------------------------------------------------------------------------
ADMIN_PREFIXES = ("/v1/admin", "/admin", "/outbox")


def admin_routes(tally: Any) -> list[tuple[str, str]]:
    found = []
    for method, path in app_routes(tally):
        if path.startswith(ADMIN_PREFIXES) and f"{method} {path}" not in PUBLIC:
            found.append((method, path))
    return found


def test_operator_routes_refuse_a_user_token(tally: Any, world: World) -> None:
    """Every operator route (found by prefix, so new ones are included): a user's JWT is not enough."""
    routes = admin_routes(tally)
    assert ("GET", "/v1/admin/events") in routes
    with tally.client(world.stranger) as client:
        for method, path in routes:
            if path.startswith("/outbox") and tally.settings.sandbox_mode:
                continue  # open in sandbox mode by design (a local developer tool); covered below
            response = client.request(method, re.sub(r"\{[^}]+\}", "evt_x", path), data={"csrf_token": "x"})
            assert response.status_code in (401, 403) or (
                response.status_code == 303 and response.headers["location"].startswith("/admin/login")), \
                f"{method} {path}: {response.status_code}"


@covers("GET /outbox", "GET /v1/admin/outbox", "GET /outbox/{email_id}/attachment")
def test_the_outbox_needs_the_api_key_with_a_stripe_key(database_url: str) -> None:
    from tests.tally_harness import TallyServer

    with TallyServer(database_url, run_worker=False, STRIPE_SECRET_KEY="sk_test_outbox") as server:
        with server.client(new_user()) as client:
            assert client.get("/outbox").status_code == 403
            assert client.get("/v1/admin/outbox").status_code == 403
            assert client.get("/outbox/1/attachment").status_code == 403
        with server.admin_client() as admin:
            assert admin.get("/outbox").status_code == 200


# -- the coverage check ------------------------------------------------------------------------------------------
def app_routes(tally: Any) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(tally.app.routes):
        if isinstance(context.original_route, APIRoute):
            for method in sorted((context.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, context.path))
    return found


USER_DEPENDENCIES = {"current_user", "required_user", "optional_user", "admin_user", "require_admin"}


def _dependency_names(route: APIRoute) -> set[str]:
    names, stack = set(), list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        names.add(getattr(dep.call, "__name__", ""))
        stack.extend(dep.dependencies)
    return names


def test_every_route_is_covered(tally: Any) -> None:
    """``@covers`` registers at import; operator routes are covered by prefix
    (test_operator_routes_refuse_a_user_token tries each one it finds)."""
    routes = {f"{m} {p}" for m, p in app_routes(tally)}
    operator = {f"{m} {p}" for m, p in admin_routes(tally)}
    missing = sorted(routes - COVERED - operator - set(PUBLIC))
    assert not missing, f"routes without a cross-user test (add one, or a PUBLIC reason): {missing}"
    assert not (COVERED & set(PUBLIC))
    assert not sorted(set(PUBLIC) - routes), "PUBLIC lists routes that no longer exist"
    # A route that identifies its caller through a user dependency cannot be waved through as public.
    for context in iter_route_contexts(tally.app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and _dependency_names(route) & {"current_user", "required_user"}:
            for method in route.methods - {"HEAD"}:
                assert f"{method} {context.path}" not in PUBLIC, f"{method} {context.path} is user-scoped"
