"""The sandbox-only control API: triggers, reset, clock, stats."""

from __future__ import annotations

import httpx
import pytest
import stripe

from stripe_sandbox.control import TRIGGERS
from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape, checked_client
from tests.webhook_receiver import WebhookReceiver


@pytest.mark.parametrize("event_type", sorted(TRIGGERS))
def test_trigger_makes_the_event_and_delivers_it(event_type: str) -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as receiver:
        endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
        receiver.secret = endpoint.secret
        answer = control(server, "POST", "/_sandbox/trigger", event=event_type)
        assert answer["triggered"] == event_type
        event = receiver.wait_for(event_type)
        assert_stripe_shape(event)
        assert_stripe_shape(event["data"]["object"])
        listed = client.v1.events.list(params={"type": event_type})
        assert event["id"] in [e.id for e in listed.data]


def test_the_basic_triggers_exist() -> None:
    assert {"customer.created", "product.created", "price.created"} <= set(TRIGGERS)


def test_unknown_trigger_is_refused() -> None:
    with private_sandbox() as (server, client):
        status, body = control(server, "POST", "/_sandbox/trigger", event="nothing.happened")
        assert status == 400 and body["error"]["param"] == "event"
        assert "customer.created" in body["error"]["message"]


def test_reset_forgets_everything() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as receiver:
        endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
        receiver.secret = endpoint.secret
        customer = client.v1.customers.create()
        receiver.wait_for("customer.created")
        assert control(server, "GET", "/_sandbox/stats")["objects"] >= 3
        assert control(server, "POST", "/_sandbox/reset") == {"reset": True}
        assert control(server, "GET", "/_sandbox/stats")["objects"] == 0
        assert control(server, "GET", "/_sandbox/deliveries")["data"] == []
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.customers.retrieve(customer.id)
        assert client.v1.events.list().data == []


def test_clock_advances_only_forward() -> None:
    with private_sandbox() as (server, client):
        before = control(server, "GET", "/_sandbox/stats")["now"]
        moved = control(server, "POST", "/_sandbox/clock/advance", seconds=3600)
        assert moved["now"] >= before + 3600 and moved["offset"] == 3600
        assert client.v1.customers.create().created >= before + 3600
        status, body = control(server, "POST", "/_sandbox/clock/advance", seconds=-1)
        assert status == 400 and body["error"]["param"] == "seconds"
        status, body = control(server, "POST", "/_sandbox/clock/advance", seconds="later")
        assert status == 400


# -- injected API failures (POST /_sandbox/faults) -------------------------------------------------------------
def test_fault_before_refuses_the_next_requests_then_serves_again() -> None:
    with private_sandbox() as (server, client):
        state = control(server, "POST", "/_sandbox/faults", status=500, count=2)
        assert state["active"] == {"status": 500, "path": "/v1/", "method": None, "when": "before", "remaining": 2,
                                   "seconds_left": None}
        for _ in range(2):
            with pytest.raises(stripe.APIError) as failed:
                client.v1.customers.create(options={"idempotency_key": "same-key"})
            assert failed.value.http_status == 500
        assert client.v1.customers.create(options={"idempotency_key": "same-key"}).object == "customer"
        assert len(client.v1.customers.list().data) == 1  # the refused requests created nothing
        injected = control(server, "GET", "/_sandbox/faults")
        assert injected["active"] is None
        assert [(i["method"], i["path"], i["idempotency_key"], i["status"]) for i in injected["injected"]] == [
            ("POST", "/v1/customers", "same-key", 500)] * 2


def test_fault_429_is_a_rate_limit_error() -> None:
    with private_sandbox() as (server, client):
        control(server, "POST", "/_sandbox/faults", status=429, count=1)
        with pytest.raises(stripe.RateLimitError):
            client.v1.customers.list()
        assert client.v1.customers.list().object == "list"


def test_fault_after_serves_the_request_and_a_retry_with_its_key_gets_the_saved_answer() -> None:
    """A lost answer: the SDK retries with the same idempotency key and gets the first answer replayed,
    so one customer exists, not two."""
    with private_sandbox() as (server, _):
        retrying = checked_client(server.url, max_network_retries=2)
        httpx.post(server.url + "/_sandbox/faults",
                   json={"status": 503, "count": 1, "when": "after", "path": "/v1/customers"}).raise_for_status()
        created = retrying.v1.customers.create(params={"email": "ada@example.com"},
                                               options={"idempotency_key": "order-1"})
        listed = retrying.v1.customers.list().data
        assert [c.id for c in listed] == [created.id]
        injected = control(server, "GET", "/_sandbox/faults")["injected"]
        assert [(i["idempotency_key"], i["when"]) for i in injected] == [("order-1", "after")]


def test_fault_by_time_and_by_path_and_cleared() -> None:
    with private_sandbox() as (server, client):
        httpx.post(server.url + "/_sandbox/faults",
                   json={"status": 502, "seconds": 600, "path": "/v1/checkout/"}).raise_for_status()
        assert client.v1.customers.create().object == "customer"  # another path: served
        with pytest.raises(stripe.APIError):
            client.v1.checkout.sessions.list()
        with pytest.raises(stripe.APIError):
            client.v1.checkout.sessions.list()
        assert control(server, "GET", "/_sandbox/faults")["active"]["seconds_left"] > 0
        assert control(server, "GET", "/_sandbox/stats")["objects"] >= 1  # the control API is never faulted
        assert control(server, "DELETE", "/_sandbox/faults") == {"active": None, "injected": []}
        assert client.v1.checkout.sessions.list().object == "list"


def test_fault_for_one_method_leaves_the_others_alone() -> None:
    """A client that polls a list must not use up the faults meant for its creates."""
    with private_sandbox() as (server, client):
        httpx.post(server.url + "/_sandbox/faults", json={"status": 503, "count": 1, "method": "POST",
                                                          "path": "/v1/customers"}).raise_for_status()
        assert client.v1.customers.list().object == "list"  # a GET: served, the fault still waits
        with pytest.raises(stripe.APIError):
            client.v1.customers.create()
        assert client.v1.customers.create().object == "customer"


@pytest.mark.parametrize("body, param", [
    ({"status": 500, "count": 1, "method": "PATCH"}, "method"),
    ({"status": 404, "count": 1}, "status"),
    ({"status": 500}, "count"),
    ({"status": 500, "count": 1, "seconds": 1}, "count"),
    ({"status": 500, "count": 0}, "count"),
    ({"status": 500, "seconds": -1}, "seconds"),
    ({"status": 500, "count": 1, "when": "during"}, "when"),
    ({"status": 500, "count": 1, "path": "/_sandbox/"}, "path"),
])
def test_bad_fault_is_refused(body: dict[str, object], param: str) -> None:
    with private_sandbox() as (server, client):
        response = httpx.post(server.url + "/_sandbox/faults", json=body)
        status, answer = response.status_code, response.json()
        assert status == 400 and answer["error"]["param"] == param
        assert client.v1.customers.list().object == "list"
