"""The sandbox-only control API: triggers, reset, clock, stats."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox.control import TRIGGERS
from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape
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
