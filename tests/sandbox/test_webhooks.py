"""Webhook delivery: matching endpoints, signatures the SDK accepts, retries, attempts, resend, outage,
endpoint changes, the default endpoint and secret rolling. Each test has a sandbox of its own."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import stripe

from stripe_sandbox import SandboxConfig
from tests.sandbox.control import control, deliveries, private_sandbox, wait_until
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver


def _settled(server: Any) -> bool:
    """No delivery queued, on the wire or waiting to be retried: whatever the sandbox will send, it has sent."""
    state = control(server, "GET", "/_sandbox/deliveries")
    return state["pending"] is False and state["retries_scheduled"] == 0


def _endpoint(client: stripe.StripeClient, receiver: WebhookReceiver, events: list[str]) -> Any:
    endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": events})
    assert_stripe_shape(endpoint)
    receiver.secret = endpoint.secret
    return endpoint


def test_delivered_signed_to_matching_endpoints_only() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as everything, WebhookReceiver() as products:
        all_ = _endpoint(client, everything, ["*"])
        _endpoint(client, products, ["product.created"])
        assert all_.secret.startswith("whsec_") and all_.status == "enabled"
        assert "secret" not in client.v1.webhook_endpoints.retrieve(all_.id).last_response.data  # shown once

        customer = client.v1.customers.create(params={"email": "hook@example.com"})
        product = client.v1.products.create(params={"name": "Hooked"})
        got = everything.wait_for("customer.created")
        assert got["data"]["object"]["id"] == customer.id
        assert_stripe_shape(got)
        assert_stripe_shape(got["data"]["object"])
        assert everything.wait_for("product.created")["data"]["object"]["id"] == product.id
        assert products.wait_for("product.created")["data"]["object"]["id"] == product.id
        wait_until(lambda: control(server, "GET", "/_sandbox/deliveries")["pending"] is False, what="idle")
        assert products.of_type("customer.created") == []
        assert everything.rejected == [] and products.rejected == []

        header = everything.headers[0]["Stripe-Signature"]
        assert header.startswith("t=") and header.count("v1=") == 1
        assert everything.headers[0]["Content-Type"].startswith("application/json")
        # the event stored by the API says how many endpoints still wait for it
        wait_until(lambda: client.v1.events.retrieve(got["id"]).pending_webhooks == 0, what="pending_webhooks 0")


def test_delivery_does_not_block_the_request() -> None:
    """The endpoint answers only once the test lets it, after the API call returned: a delivery made inside the
    request would hold the call until the endpoint's wait ran out, and be answered by then."""
    with private_sandbox() as (server, client), WebhookReceiver() as slow:
        _endpoint(client, slow, ["customer.created"])
        release, answered = threading.Event(), threading.Event()

        def answer(event: dict[str, Any]) -> int:
            release.wait(timeout=30)
            answered.set()
            return 200

        slow.answer = answer
        client.v1.customers.create()
        assert not answered.is_set()  # the call returned while its delivery was still unanswered
        release.set()
        slow.wait_for("customer.created")


def test_failures_are_retried_with_backoff_and_recorded() -> None:
    with private_sandbox(webhook_retry_delays=(0.2, 0.4, 0.8)) as (server, client), WebhookReceiver() as flaky:
        endpoint = _endpoint(client, flaky, ["customer.created"])
        answers = iter([500, 503])
        flaky.answer = lambda event: next(answers, 200)
        customer = client.v1.customers.create()
        event = flaky.wait_for("customer.created")
        attempts = deliveries(server, event=event["id"])
        assert [a["attempt"] for a in attempts] == [1, 2, 3]
        assert [a["status_code"] for a in attempts] == [500, 503, 200]
        assert [a["succeeded"] for a in attempts] == [False, False, True]
        assert all(a["endpoint"] == endpoint.id and a["url"] == flaky.url for a in attempts)
        gaps = [b["created"] - a["created"] for a, b in zip(attempts, attempts[1:])]
        assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # backoff grows
        assert attempts[-1]["delay_ms"] >= 600
        assert event["data"]["object"]["id"] == customer.id


def test_retries_stop_after_the_schedule() -> None:
    with private_sandbox(webhook_retry_delays=(0.1, 0.1)) as (server, client), WebhookReceiver() as broken:
        _endpoint(client, broken, ["customer.created"])
        broken.answer = lambda event: 500
        client.v1.customers.create()
        wait_until(lambda: len(deliveries(server)) == 3, what="three attempts")
        wait_until(lambda: _settled(server), what="no retry left")
        attempts = deliveries(server)
        assert len(attempts) == 3 and not any(a["succeeded"] for a in attempts)
        assert broken.events == []


def test_timeouts_and_refused_connections_are_failures() -> None:
    with private_sandbox(webhook_timeout=0.3, webhook_retry_delays=(0.1,)) as (server, client), \
            WebhookReceiver() as sleepy:
        _endpoint(client, sleepy, ["customer.created"])
        calls = []

        def answer(event: dict[str, Any]) -> int:
            calls.append(event["id"])
            if len(calls) == 1:
                time.sleep(0.6)
            return 200

        sleepy.answer = answer
        client.v1.customers.create()
        wait_until(lambda: any(a["succeeded"] for a in deliveries(server)), what="a successful retry")
        first, second = deliveries(server)[:2]
        assert first["status_code"] is None and "Timeout" in first["error"]
        assert second["succeeded"] and second["attempt"] == 2

        client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/nothing", "enabled_events": ["*"]})
        event_id = client.v1.products.create(params={"name": "x"}).id
        assert event_id
        wait_until(lambda: [a for a in deliveries(server) if a["url"].endswith("/nothing")], what="refused")
        refused = [a for a in deliveries(server) if a["url"].endswith("/nothing")][0]
        assert refused["error"] and not refused["succeeded"]


def test_deliveries_filter_by_event_and_endpoint() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as one, WebhookReceiver() as two:
        first = _endpoint(client, one, ["customer.created"])
        second = client.v1.webhook_endpoints.create(params={"url": two.url, "enabled_events": ["*"]})
        two.secret = second.secret
        client.v1.customers.create()
        client.v1.products.create(params={"name": "p"})
        two.wait_for("product.created")
        one.wait_for("customer.created")
        wait_until(lambda: len(deliveries(server)) == 3, what="three deliveries")
        assert {a["endpoint"] for a in deliveries(server, endpoint=first.id)} == {first.id}
        assert len(deliveries(server, endpoint=second.id)) == 2
        customer_event = one.of_type("customer.created")[0]["id"]
        assert {a["endpoint"] for a in deliveries(server, event=customer_event)} == {first.id, second.id}
        assert len(deliveries(server, event=customer_event, endpoint=second.id)) == 1
        assert deliveries(server, event="evt_nothing") == []
        assert len(deliveries(server, event_type="product.created")) == 1


def test_resend_an_event() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as receiver:
        endpoint = _endpoint(client, receiver, ["customer.created"])
        client.v1.customers.create()
        event = receiver.wait_for("customer.created")
        answer = control(server, "POST", f"/_sandbox/events/{event['id']}/resend", endpoint=endpoint.id)
        assert answer == {"resent": event["id"], "endpoints": [endpoint.id]}
        wait_until(lambda: len(receiver.of_type("customer.created")) == 2, what="the resent event")
        assert [e["id"] for e in receiver.of_type("customer.created")] == [event["id"]] * 2
        # without an endpoint: to every endpoint
        assert control(server, "POST", f"/_sandbox/events/{event['id']}/resend")["endpoints"] == [endpoint.id]
        wait_until(lambda: len(receiver.of_type("customer.created")) == 3, what="the second resend")
        status, body = control(server, "POST", "/_sandbox/events/evt_missing/resend")
        assert status == 404 and body["error"]["code"] == "resource_missing"
        status, body = control(server, "POST", f"/_sandbox/events/{event['id']}/resend", endpoint="we_missing")
        assert status == 404


def test_pause_holds_deliveries_until_resumed() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as receiver:
        _endpoint(client, receiver, ["*"])
        assert control(server, "POST", "/_sandbox/webhooks/pause") == {"paused": True}
        customer = client.v1.customers.create()
        client.v1.customers.update(customer.id, params={"name": "Paused"})
        state = wait_until(lambda: (s := control(server, "GET", "/_sandbox/deliveries"))["held"] == 2 and s,
                           what="both deliveries held")
        assert state["paused"] is True
        assert receiver.events == [] and deliveries(server) == []
        # an outage: the events are still listed by the API, for reconciliation
        listed = client.v1.events.list(params={"limit": 2})
        assert [e.type for e in listed.data] == ["customer.updated", "customer.created"]
        assert all(e.pending_webhooks == 1 for e in listed.data)
        assert control(server, "POST", "/_sandbox/webhooks/resume") == {"paused": False}
        receiver.wait_for("customer.created")
        updated = receiver.wait_for("customer.updated")
        assert updated["data"]["previous_attributes"] == {"name": None}


def test_endpoint_update_and_delete_change_deliveries() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as first, WebhookReceiver() as second:
        endpoint = _endpoint(client, first, ["customer.created"])
        second.secret = endpoint.secret
        updated = client.v1.webhook_endpoints.update(endpoint.id, params={"enabled_events": ["product.created"]})
        assert_stripe_shape(updated)
        assert updated.enabled_events == ["product.created"]
        client.v1.customers.create()
        client.v1.products.create(params={"name": "a"})
        first.wait_for("product.created")
        assert first.of_type("customer.created") == []

        client.v1.webhook_endpoints.update(endpoint.id, params={"url": second.url})
        client.v1.products.create(params={"name": "b"})
        second.wait_for("product.created")

        disabled = client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
        assert disabled.status == "disabled"
        client.v1.products.create(params={"name": "c"})
        wait_until(lambda: _settled(server), what="no delivery on its way")
        assert len(second.events) == 1
        client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})

        listed = client.v1.webhook_endpoints.list()
        assert_stripe_shape(listed)
        assert [e.id for e in listed.data] == [endpoint.id]
        deleted = client.v1.webhook_endpoints.delete(endpoint.id)
        assert_stripe_shape(deleted)
        client.v1.products.create(params={"name": "d"})
        wait_until(lambda: _settled(server), what="no delivery on its way")
        assert len(second.events) == 1
        with pytest.raises(stripe.InvalidRequestError) as gone:
            client.v1.webhook_endpoints.retrieve(endpoint.id)
        assert gone.value.http_status == 404


def test_deleting_an_endpoint_stops_its_retries() -> None:
    with private_sandbox(webhook_retry_delays=(0.3, 0.3)) as (server, client), WebhookReceiver() as broken:
        endpoint = _endpoint(client, broken, ["customer.created"])
        broken.answer = lambda event: 500
        client.v1.customers.create()
        wait_until(lambda: deliveries(server), what="the first attempt")
        client.v1.webhook_endpoints.delete(endpoint.id)
        wait_until(lambda: _settled(server), what="the scheduled retry dropped or done")
        assert len(deliveries(server)) == 1


def test_endpoint_errors() -> None:
    with private_sandbox() as (server, client):
        with pytest.raises(stripe.InvalidRequestError) as bad_url:
            client.v1.webhook_endpoints.create(params={"url": "ftp://x", "enabled_events": ["*"]})
        assert bad_url.value.param == "url"
        with pytest.raises(stripe.InvalidRequestError) as no_events:
            client.v1.webhook_endpoints.create(params={"url": "http://x.test/"})  # type: ignore[typeddict-item]
        assert no_events.value.param == "enabled_events"


def test_default_endpoint_from_config_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with WebhookReceiver(secret="whsec_default_for_tests") as receiver:
        with private_sandbox(webhook_url=receiver.url, webhook_secret="whsec_default_for_tests") as (server, client):
            endpoints = client.v1.webhook_endpoints.list().data
            assert [(e.url, e.enabled_events) for e in endpoints] == [(receiver.url, ["*"])]
            client.v1.customers.create()
            receiver.wait_for("customer.created")
        # the environment, as `STRIPE_SANDBOX_WEBHOOK_URL=... python -m stripe_sandbox` would read it
        monkeypatch.setenv("STRIPE_SANDBOX_WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("STRIPE_SANDBOX_WEBHOOK_SECRET", "whsec_default_for_tests")
        config = SandboxConfig(port=0)
        assert config.webhook_url == receiver.url and config.webhook_secret == "whsec_default_for_tests"
        with private_sandbox(webhook_url=config.webhook_url, webhook_secret=config.webhook_secret) as (_, client):
            product = client.v1.products.create(params={"name": "env"})
            receiver.wait_for("product.created", where=lambda e: e["data"]["object"]["id"] == product.id)
        assert receiver.rejected == []


def test_roll_secret_signs_with_both_until_the_old_one_expires() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as old_side, WebhookReceiver() as new_side:
        endpoint = _endpoint(client, old_side, ["*"])
        old_secret = endpoint.secret
        rolled = control(server, "POST", f"/_sandbox/webhook_endpoints/{endpoint.id}/roll_secret",
                         expire_old_after_seconds=3600)
        assert rolled["secret"].startswith("whsec_") and rolled["secret"] != old_secret
        assert rolled["active_secrets"] == 2
        new_side.secret = rolled["secret"]
        client.v1.customers.create()
        event = old_side.wait_for("customer.created")
        header = old_side.headers[-1]["Stripe-Signature"]
        assert header.count("v1=") == 2
        body = old_side.bodies[-1]
        assert stripe.Webhook.construct_event(body, header, rolled["secret"]).id == event["id"]  # the new one
        assert stripe.Webhook.construct_event(body, header, old_secret).id == event["id"]  # and the old one

        control(server, "POST", "/_sandbox/clock/advance", seconds=3601)
        client.v1.webhook_endpoints.update(endpoint.id, params={"url": new_side.url})
        client.v1.products.create(params={"name": "after expiry"})
        after = new_side.wait_for("product.created")
        assert new_side.headers[-1]["Stripe-Signature"].count("v1=") == 1
        assert after["type"] == "product.created"

        immediate = control(server, "POST", f"/_sandbox/webhook_endpoints/{endpoint.id}/roll_secret",
                            expire_old_after_seconds=0)
        assert immediate["active_secrets"] == 1
        status, body = control(server, "POST", "/_sandbox/webhook_endpoints/we_missing/roll_secret")
        assert status == 404
        status, body = control(server, "POST", f"/_sandbox/webhook_endpoints/{endpoint.id}/roll_secret",
                               expire_old_after_seconds="soon")
        assert status == 400 and body["error"]["param"] == "expire_old_after_seconds"


def test_a_hung_endpoint_delays_only_its_own_deliveries() -> None:
    """Each endpoint has its own queue and workers (``webhook_concurrency`` of them): one that never answers
    holds up its own deliveries until they time out, while a healthy one gets every event at once, in order."""
    # accepts connections (the kernel does) and never answers them: a hung endpoint
    sandbox = private_sandbox(webhook_timeout=2.0, webhook_concurrency=4, webhook_retry_delays=(0.2,))
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent, sandbox as (server, client), \
            WebhookReceiver() as healthy:
        # created first, so that its deliveries are queued first
        stuck = client.v1.webhook_endpoints.create(params={
            "url": f"http://127.0.0.1:{silent.getsockname()[1]}/hangs", "enabled_events": ["customer.created"]})
        fine = _endpoint(client, healthy, ["customer.created"])
        customers = [client.v1.customers.create().id for _ in range(30)]
        wait_until(lambda: len(healthy.events) == 30, what="every event at the healthy endpoint")

        # with workers shared by all endpoints, four hung requests would have held these for 2 s each
        answered = deliveries(server, endpoint=fine.id)
        assert [a["succeeded"] for a in answered] == [True] * 30
        assert max(a["delay_ms"] for a in answered) < 1000
        event_of = {e["data"]["object"]["id"]: e["id"] for e in healthy.events}
        assert [a["event"] for a in sorted(answered, key=lambda a: a["id"])] == [event_of[c] for c in customers]
        state = control(server, "GET", "/_sandbox/deliveries")
        assert state["pending"] is True and state["in_flight"] == 4 and state["queued"] > 0  # the hung one's

        # deleting the endpoint drops what it still had queued; what is on the wire ends with the timeout
        client.v1.webhook_endpoints.delete(stuck.id)
        state = control(server, "GET", "/_sandbox/deliveries")
        assert state["queued"] == 0 and state["retries_scheduled"] == 0
        wait_until(lambda: control(server, "GET", "/_sandbox/deliveries")["pending"] is False, timeout=5,
                   what="the hung requests to time out")
        timed_out = deliveries(server, endpoint=stuck.id)
        assert 4 <= len(timed_out) < 30 and all("Timeout" in a["error"] for a in timed_out)
