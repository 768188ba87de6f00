"""/metrics moves with a purchase, a decline and a spend; request ids; JSON logs with secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tally.observability.logging import configure_logging, get_logger, redact
from tests.integration.purchase_flow import DECLINED, checkout, new_user, pay, wait_processed, wait_until

# The logging tests below point Tally's log handler at a stream of their own; restore_logging puts it back.
pytestmark = [pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning"),
              pytest.mark.usefixtures("restore_logging")]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(tally: Any) -> Samples:
    with tally.admin_client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_the_api_key_or_metrics_token(tally: Any) -> None:
    assert httpx.get(tally.url + "/metrics").status_code == 401
    bad = httpx.get(tally.url + "/metrics", headers={"Authorization": "Bearer not-the-key"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"


def test_a_purchase_moves_the_counters(tally: Any) -> None:
    before = scrape(tally)
    user = new_user()
    with tally.client(user) as client:
        session = checkout(client, "starter")
        assert pay(tally, session["session_id"]).status_code in (200, 303)
        wait_processed(tally, session["session_id"], "checkout.session.completed")
        wait_until(lambda: client.get("/v1/credits").json()["balance"] == 500, "credits granted")
        spent = client.post("/v1/credits/spend", json={"amount": 120, "reason": "export",
                                                        "idempotency_key": uuid.uuid4().hex})
        assert spent.status_code == 200, spent.text
    after = scrape(tally)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tally_payments_total", outcome="succeeded", method="card", decline_code="", currency="usd") == 1
    assert delta("tally_credits_granted_total", category="paid") == 500
    assert delta("tally_credits_spent_total") == 120
    assert delta("tally_webhook_events_received_total", type="checkout.session.completed") == 1
    assert delta("tally_webhook_events", type="checkout.session.completed", status="processed") == 1
    assert delta("tally_http_requests_total", method="POST", route="/v1/checkout", status="200") == 1
    assert delta("tally_http_requests_total", method="POST", route="/v1/credits/spend", status="200") == 1
    assert delta("tally_http_request_duration_seconds_count", method="POST", route="/v1/checkout") == 1
    # Gauges read at scrape time are present even when nothing waits.
    assert ("tally_webhook_oldest_pending_age_seconds", frozenset()) in after
    assert ("tally_worker_queue_depth", frozenset()) in after


def test_a_declined_card_counts_as_a_failed_payment_with_its_decline_code(tally: Any) -> None:
    before = scrape(tally)
    with tally.client(new_user()) as client:
        session = checkout(client, "starter")
        pay(tally, session["session_id"], card=DECLINED)
    labels = {"outcome": "failed", "method": "card", "decline_code": "generic_decline", "currency": "usd"}
    wait_until(lambda: value(scrape(tally), "tally_payments_total", **labels)
               == value(before, "tally_payments_total", **labels) + 1, "the decline counted")
    after = scrape(tally)
    assert value(after, "tally_payments_total", outcome="succeeded", method="card", decline_code="",
                 currency="usd") == value(before, "tally_payments_total", outcome="succeeded", method="card",
                                          decline_code="", currency="usd")


def test_unknown_paths_share_one_route_label(tally: Any) -> None:
    before = scrape(tally)
    for path in ("/no-such-page-1", "/no-such-page-2"):
        httpx.get(tally.url + path)
    after = scrape(tally)
    assert value(after, "tally_http_requests_total", method="GET", route="unmatched", status="404") \
        - value(before, "tally_http_requests_total", method="GET", route="unmatched", status="404") == 2
    assert not any("no-such-page" in str(labels) for _, labels in after)


def test_every_response_carries_a_request_id(tally: Any) -> None:
    fresh = httpx.get(tally.url + "/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    given = httpx.get(tally.url + "/healthz", headers={"X-Request-Id": "trace-abc-123456"})
    assert given.headers["x-request-id"] == "trace-abc-123456"
    # Anything that is not a plain token is replaced rather than written to the logs.
    odd = httpx.get(tally.url + "/healthz", headers={"X-Request-Id": "a b\"<script>"})
    assert odd.headers["x-request-id"] != "a b\"<script>"


def test_request_log_lines_are_json_with_the_request_id(tally: Any) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    response = httpx.get(tally.url + "/healthz", headers={"X-Request-Id": "req-log-test-0001"})
    assert response.status_code == 200
    wait_until(lambda: "req-log-test-0001" in stream.getvalue(), "the request's log line")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if "req-log-test-0001" in line]
    line = lines[0]
    assert line["event"] == "request" and line["route"] == "/healthz" and line["status"] == 200
    assert line["level"] == "info" and "timestamp" in line and isinstance(line["duration_ms"], float)


def test_request_log_line_names_the_signed_in_user(tally: Any) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    with tally.client("log-user-7") as client:
        response = client.get("/v1/credits", headers={"X-Request-Id": "req-log-user-0007"})
    assert response.status_code == 200
    wait_until(lambda: "req-log-user-0007" in stream.getvalue(), "the request's log line")
    line = next(json.loads(x) for x in stream.getvalue().splitlines() if "req-log-user-0007" in x)
    assert line["event"] == "request" and line["user_id"] == "log-user-7"


def test_logs_never_carry_secrets_or_card_numbers() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    get_logger("tally.test").info(
        "charging", user_id="user-1", stripe_customer_id="cus_123", card="4242 4242 4242 4242",
        note="key sk_test_abcdef123 and whsec_s3cr3t and Bearer eyJhbGciOi.eyJzdWIiOi.c2ln used",
        headers={"Authorization": "Bearer abc", "Stripe-Signature": "t=1,v1=ff"}, pan=4000056655665556,
        client="pi_123_secret_456", order_total=4999)
    logging.getLogger("tally.stdlib").warning("card 5555-5555-5555-4444 from a stdlib logger")
    text = stream.getvalue()
    for secret in ("4242 4242 4242 4242", "sk_test_abcdef123", "whsec_s3cr3t", "eyJhbGciOi", "Bearer abc",
                   "v1=ff", "4000056655665556", "pi_123_secret_456", "5555-5555-5555-4444"):
        assert secret not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["user_id"] == "user-1" and first["stripe_customer_id"] == "cus_123"  # ids stay
    assert first["order_total"] == 4999 and first["card"] == "[card redacted]"
    assert first["headers"] == {"Authorization": "[redacted]", "Stripe-Signature": "[redacted]"}
    assert second["level"] == "warning" and second["event"] == "card [card redacted] from a stdlib logger"


def test_redaction_keeps_ordinary_numbers_and_ids() -> None:
    # 1234567890123 fails the Luhn check: not a card, left alone; Stripe ids are not secrets.
    harmless = "order 1234567890123 for cs_test_a1B2 and evt_1Abc"
    assert redact(harmless) == harmless
    assert redact({"api_key": "k", "amount": 500}) == {"api_key": "[redacted]", "amount": 500}


def test_log_lines_render_whatever_they_are_given() -> None:
    """Lines render through orjson; what it refuses (an integer past 64 bits) falls back to json, and objects
    neither knows are logged by their repr, never dropped or raised."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    get_logger("tally.test").info("odd values", huge=2**70, thing=object(), by_number={1: "a"}, text="é ✓")
    (line,) = (json.loads(x) for x in stream.getvalue().splitlines())
    assert line["huge"] == 2**70 and line["thing"].startswith("<object object at")
    assert line["by_number"] == {"1": "a"} and line["text"] == "é ✓" and line["event"] == "odd values"


def test_webhook_deliveries_are_counted_logged_and_carry_the_usual_headers(tally: Any) -> None:
    """Deliveries skip FastAPI's dependency solving (``tally.fast_route``) but not the request id, the security
    headers, the route's metrics or its error shape."""
    from tests.webhook_signing import make_event, signed

    before = scrape(tally)
    body, headers = signed(make_event("tally.test.metrics_noop"), tally.webhook_secret)
    for path in ("/v1/webhooks/stripe", "/api/stripe/webhook"):
        ok = httpx.post(tally.url + path, content=body, headers=headers)
        assert ok.status_code == 200 and ok.json() == {"received": True}
        assert len(ok.headers["x-request-id"]) == 32 and ok.headers["x-content-type-options"] == "nosniff"
    forged = httpx.post(tally.url + "/v1/webhooks/stripe", content=body + b" ", headers=headers)
    assert forged.status_code == 400 and forged.json()["error"]["param"] == "Stripe-Signature"
    after = scrape(tally)

    def delta(route: str, status: str) -> float:
        labels = {"method": "POST", "route": route, "status": status}
        return value(after, "tally_http_requests_total", **labels) - value(before, "tally_http_requests_total",
                                                                          **labels)

    assert delta("/v1/webhooks/stripe", "200") == 1 and delta("/api/stripe/webhook", "200") == 1
    assert delta("/v1/webhooks/stripe", "400") == 1
