"""Hand-picked bad input on every route that writes: malformed JSON, wrong types, huge numbers, negative
amounts, unknown pack ids, unicode Tally cannot store, oversized bodies and bad webhook deliveries. Each
gets a clear 4xx in its route's error shape (a message, and the offending field where there is one), and
nothing is written: no row in any of Tally's tables, no object in Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from tally.db import libpq_url
from tests.integration.purchase_flow import checkout, pay, wait_until
from tests.tally_harness import TallyServer
from tests.webhook_signing import make_event, sign

USER = "badinput-user"
# Written by the worker on its own schedule, whatever the requests do.
BACKGROUND_TABLES = {"alembic_version", "reconcile_cursors", "credit_total_deltas", "credit_totals",
                     "credit_money_deltas", "credit_money_totals"}


@dataclass
class Bad:
    """One bad request and the answer it must get."""

    id: str
    method: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    param: str | None = None  # the field the error names
    says: str | None = None  # a word the message must contain (case-insensitive)
    auth: str = "user"  # user | api_key | none


@dataclass(frozen=True)
class Setup:
    tally: TallyServer
    order_id: str  # a pending PaymentIntent order of USER


@pytest.fixture(scope="module")
def setup(badinput_tally: TallyServer) -> Setup:
    with badinput_tally.client(USER) as client:
        started = checkout(client, "plus")  # 1 100 coins, so spends fail on their input, not the balance
        pay(badinput_tally, started["session_id"])
        wait_until(lambda: client.get("/v1/credits").json()["balance"] == 1100, "the purchase credited")
        order = client.post("/v1/orders", json={"pack_id": "starter"})
        assert order.status_code == 200, order.text
    # Matching a "price_..." reference looks up every plan's current Stripe price, creating the plans'
    # Products and Prices on first use: a cache of the plans file, made once by whichever request needs it
    # first. Made here, so that the counts below see only what the bad requests themselves write.
    with httpx.Client(base_url=badinput_tally.url, timeout=30) as client:
        warm = client.post(FAMILY_CHECKOUT, json={"priceId": "price_warm_up"},
                           headers=_headers(badinput_tally, Bad("", "POST", FAMILY_CHECKOUT, 400, auth="api_key")))
        assert warm.status_code == 400, warm.text
    return Setup(badinput_tally, order.json()["order_id"])


SPEND = "/v1/credits/spend"
GOOD_SPEND = {"amount": 5, "reason": "chat", "idempotency_key": "k-1"}
FAMILY_CHECKOUT = "/api/stripe/create-checkout-session"
LEGACY_CHECKOUT = "/api/payment/create-checkout-session"
LEGACY = {"price_usd": "4.99", "coins": 500, "bonus": 0}
BIG = b'{"amount": 5, "reason": "' + b"x" * (70 * 1024) + b'", "idempotency_key": "k-big"}'

CASES = [
    # -- malformed JSON ------------------------------------------------------------------------------
    Bad("spend-truncated-json", "POST", SPEND, 400, content=b'{"amount": 5,', says="not valid JSON"),
    Bad("spend-not-json", "POST", SPEND, 400, content=b"amount=5&reason=x", says="not valid JSON"),
    Bad("spend-json-array", "POST", SPEND, 400, json=[5, "chat", "k"]),
    Bad("spend-empty-body", "POST", SPEND, 400, content=b""),
    Bad("checkout-bad-json", "POST", "/v1/checkout", 400, content=b"{'pack_id': 'plus'}", says="not valid JSON"),
    Bad("family-bad-json", "POST", FAMILY_CHECKOUT, 400, content=b'{"priceId": ', auth="api_key",
        says="not valid JSON"),
    Bad("webhook-signed-garbage", "POST", "/v1/webhooks/stripe", 400, content=b"{not json", auth="none"),
    # -- wrong types ---------------------------------------------------------------------------------
    Bad("spend-amount-string", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": "5"}, param="amount"),
    Bad("spend-amount-float", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": 5.0}, param="amount"),
    Bad("spend-amount-bool", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": True}, param="amount"),
    Bad("spend-reason-object", "POST", SPEND, 400, json={**GOOD_SPEND, "reason": {"a": 1}}, param="reason"),
    Bad("checkout-pack-number", "POST", "/v1/checkout", 400, json={"pack_id": 123}, param="pack_id"),
    Bad("checkout-url-not-http", "POST", "/v1/checkout", 400,
        json={"pack_id": "plus", "success_url": "javascript:alert(1)"}, param="success_url"),
    Bad("checkout-client-price", "POST", "/v1/checkout", 400, json={"pack_id": "plus", "amount": 1},
        param="amount"),
    Bad("legacy-coins-word", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "coins": "many"}, param="coins"),
    Bad("intent-methods-string", "POST", "/v1/orders/{order}/payment-intent", 400,
        json={"payment_method_types": "card"}, param="payment_method_types"),
    # -- huge numbers --------------------------------------------------------------------------------
    Bad("spend-amount-1e30", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": 10**30}, param="amount"),
    Bad("spend-amount-over-max", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": 10**12 + 1}, param="amount"),
    Bad("spend-amount-1e400", "POST", SPEND, 400,
        content=b'{"amount": 1e400, "reason": "chat", "idempotency_key": "k-inf"}', param="amount"),
    Bad("spend-more-than-balance", "POST", SPEND, 409, json={**GOOD_SPEND, "amount": 10**12},
        param="amount", says="balance"),
    Bad("legacy-price-1e100", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "price_usd": "1e100"},
        param="price_usd"),
    Bad("legacy-coins-huge", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "coins": 10**40}, param="coins"),
    Bad("transactions-limit-huge", "GET", "/v1/credits/transactions?limit=100000000000000000000", 400,
        param="limit"),
    Bad("transactions-cursor-huge", "GET", "/v1/credits/transactions?cursor=" + "9" * 40, 400, param="cursor"),
    # -- negative amounts ----------------------------------------------------------------------------
    Bad("spend-negative", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": -500}, param="amount"),
    Bad("spend-zero", "POST", SPEND, 400, json={**GOOD_SPEND, "amount": 0}, param="amount"),
    Bad("legacy-price-negative", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "price_usd": "-4.99"},
        param="price_usd"),
    Bad("legacy-bonus-negative", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "bonus": -100}, param="bonus"),
    Bad("legacy-price-not-a-pack", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "price_usd": "0.01"},
        param="price_usd", says="catalog"),
    Bad("transactions-limit-negative", "GET", "/v1/credits/transactions?limit=-1", 400, param="limit"),
    # -- unknown pack, plan and price ids ------------------------------------------------------------
    Bad("checkout-unknown-pack", "POST", "/v1/checkout", 400, json={"pack_id": "nope"}, param="pack_id",
        says="starter"),
    Bad("order-unknown-pack", "POST", "/v1/orders", 400, json={"pack_id": "nope"}, param="pack_id"),
    Bad("order-currency-not-sold", "POST", "/v1/orders", 400, json={"pack_id": "starter", "currency": "jpy"},
        param="currency"),
    Bad("subscription-unknown-plan", "POST", "/v1/subscriptions/checkout", 400, json={"plan_id": "nope"},
        param="plan_id"),
    Bad("family-unknown-price", "POST", FAMILY_CHECKOUT, 400, json={"priceId": "price_nope"}, auth="api_key"),
    Bad("business-unknown-plan", "POST", "/api/business/credit-orders", 400, json={"planId": "nope"},
        auth="api_key"),
    Bad("order-unknown-id", "GET", "/v1/orders/00000000-0000-0000-0000-000000000000", 404),
    # -- unicode ---------------------------------------------------------------------------------------
    Bad("spend-key-not-ascii", "POST", SPEND, 400, json={**GOOD_SPEND, "idempotency_key": "ключ"},
        param="idempotency_key"),
    Bad("spend-reason-nul", "POST", SPEND, 400, json={**GOOD_SPEND, "reason": "a\x00b"}, says="NUL"),
    Bad("spend-reason-lone-surrogate", "POST", SPEND, 400,
        content=b'{"amount": 5, "reason": "\\ud800", "idempotency_key": "k-sur"}', param="reason"),
    Bad("checkout-pack-accented", "POST", "/v1/checkout", 400, json={"pack_id": "st\u00e1rter"}, param="pack_id"),
    Bad("checkout-pack-rtl-override", "POST", "/v1/checkout", 400, json={"pack_id": "\u202eretrats"},
        param="pack_id"),
    Bad("family-user-id-nul", "POST", FAMILY_CHECKOUT, 400, json={"priceId": "plus", "userId": "u\x00"},
        auth="api_key", says="NUL"),
    Bad("legacy-user-id-nul", "POST", LEGACY_CHECKOUT, 400, json={**LEGACY, "user_id": "u\x00"}, auth="api_key",
        says="NUL"),
    Bad("business-user-id-nul", "POST", "/api/business/credit-orders", 400,
        json={"planId": "starter", "userId": "u\x00"}, auth="api_key", says="NUL"),
    Bad("events-type-nul", "GET", "/v1/admin/events?type=a%00b", 400, auth="api_key", says="NUL"),
    Bad("events-cursor-nul", "GET", "/v1/admin/events?cursor=a%00b", 400, auth="api_key", says="NUL"),
    Bad("outbox-to-nul", "GET", "/v1/admin/outbox?to=a%00b", 400, auth="api_key", says="NUL"),
    Bad("replay-event-nul", "POST", "/v1/admin/events/evt_%00/replay", 400, auth="api_key", says="NUL"),
    Bad("order-id-nul", "GET", "/v1/orders/a%00b", 404),
    Bad("order-id-emoji", "POST", "/v1/orders/%F0%9F%92%B8/confirm", 404, json={}),
    # -- oversized bodies -----------------------------------------------------------------------------
    Bad("spend-70kb", "POST", SPEND, 413, content=BIG, says="larger"),
    Bad("webhook-70kb", "POST", "/v1/webhooks/stripe", 413, content=BIG, auth="none", says="larger"),
    Bad("checkout-70kb", "POST", "/v1/checkout", 413, content=b'{"pack_id": "' + b"p" * 70_000 + b'"}',
        says="larger"),
    # -- webhook deliveries ---------------------------------------------------------------------------
    Bad("webhook-unsigned", "POST", "/v1/webhooks/stripe", 400, content=b"{}", auth="none",
        param="Stripe-Signature"),
    Bad("webhook-forged", "POST", "/v1/webhooks/stripe", 400, content=b'{"id": "evt_forged"}', auth="none",
        headers={"Stripe-Signature": "t=1,v1=" + "0" * 64}),
]


def _expand(case: Bad, order_id: str) -> str:
    return case.path.replace("{order}", order_id)


def _headers(tally: TallyServer, case: Bad) -> dict[str, str]:
    headers = {"Content-Type": "application/json"} if case.content is not None else {}
    if case.auth == "user":
        headers["Authorization"] = f"Bearer {tally.token(USER)}"
    elif case.auth == "api_key":
        headers.update({"Authorization": f"Bearer {tally.api_key}", "Tally-User-Id": USER})
    return {**headers, **case.headers}


def _quiet(tally: TallyServer) -> None:
    """Wait until Stripe has delivered every event and Tally has processed them: what earlier steps
    caused must be done before counting what this request causes."""
    def done() -> bool:
        # Retries count too: events made while Tally was starting (the catalog sync) failed their first
        # delivery and arrive on the sandbox's retry schedule.
        deliveries = httpx.get(f"{tally.sandbox.url}/_sandbox/deliveries", timeout=30).json()
        pending = deliveries["pending"] or deliveries["retries_scheduled"] or deliveries["held"]
        with psycopg.connect(libpq_url(tally.database_url), autocommit=True) as conn:
            waiting = conn.execute("SELECT count(*) FROM webhook_events WHERE status = 'pending'").fetchone()
        return not pending and waiting == (0,)
    wait_until(done, "webhook deliveries settled", timeout=30)


def _snapshot(tally: TallyServer) -> dict[str, Any]:
    """Rows in each of Tally's tables, and Stripe's objects by type."""
    _quiet(tally)
    counts: dict[str, Any] = {}
    with psycopg.connect(libpq_url(tally.database_url), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'procrastinate%'")]
        for table in tables:
            if table not in BACKGROUND_TABLES:
                counts[table] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # type: ignore[index]
    stats = httpx.get(f"{tally.sandbox.url}/_sandbox/stats", timeout=30).json()
    counts.update({f"stripe:{kind}": n for kind, n in stats["by_type"].items()})
    return counts


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(setup: Setup, case: Bad) -> None:
    tally = setup.tally
    before = _snapshot(tally)
    with httpx.Client(base_url=tally.url, timeout=30) as client:
        response = client.request(case.method, _expand(case, setup.order_id), json=case.json,
                                  content=case.content, headers=_headers(tally, case))
    assert response.status_code == case.status, response.text
    body = response.json()
    if case.path.startswith(("/api/stripe/", "/api/business/")):
        assert body["success"] is False
        error = body["error"]
    else:
        error = body["error"]
        assert error["type"] and "param" in error
        if case.param is not None:
            assert error["param"] == case.param, error
    assert error["message"].strip(), body
    if case.param is not None and case.path.startswith(("/api/stripe/", "/api/business/")):
        assert case.param in error["message"], error
    if case.says is not None:
        assert case.says.lower() in error["message"].lower(), error
    assert _snapshot(tally) == before


@pytest.mark.parametrize("path", [SPEND, "/v1/webhooks/stripe", FAMILY_CHECKOUT])
def test_chunked_oversized_body_is_refused_while_reading(setup: Setup, path: str) -> None:
    """No Content-Length to refuse up front: the limit applies to what is actually read."""
    tally = setup.tally
    before = _snapshot(tally)

    def chunks() -> Iterator[bytes]:
        yield b'{"amount": 5, "reason": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'", "idempotency_key": "k-chunked"}'

    headers = _headers(tally, Bad("", "POST", path, 413, content=b"", auth="api_key"))
    with httpx.Client(base_url=tally.url, timeout=30) as client:
        response = client.post(path, content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "payload_too_large"  # one shape: refused before any route
    assert _snapshot(tally) == before


def test_signed_delivery_that_is_not_an_event_is_refused(setup: Setup) -> None:
    """Correctly signed, so only the body is wrong: not JSON, not an object, or an object with no id/type."""
    tally = setup.tally
    before = _snapshot(tally)
    event = make_event()
    for body in (b"{not json", b"[1, 2]", b'"evt_1"', b'{"object": "event"}',
                 b'{"id": 5, "type": "checkout.session.completed"}',
                 b'{"id": "evt_\\u0000", "type": "x", "object": "event"}'):
        response = httpx.post(f"{tally.url}/v1/webhooks/stripe", content=body,
                              headers={"Stripe-Signature": sign(body, tally.webhook_secret),
                                       "Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["message"]
    # A stale signature on a real event.
    raw = str(event).encode()
    response = httpx.post(f"{tally.url}/v1/webhooks/stripe", content=raw,
                          headers={"Stripe-Signature": sign(raw, tally.webhook_secret, timestamp=1)}, timeout=30)
    assert response.status_code == 400
    assert _snapshot(tally) == before
