"""``--data PATH``: a restart keeps objects, events, endpoint secrets and the clock."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver


def test_restart_keeps_everything(tmp_path: Path) -> None:
    data = str(tmp_path / "sandbox.sqlite")
    with WebhookReceiver() as receiver:
        with private_sandbox(data_path=data) as (server, client):
            endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
            receiver.secret = endpoint.secret
            customer = client.v1.customers.create(params={"email": "kept@example.com", "metadata": {"k": "v"}})
            product = client.v1.products.create(params={"name": "Kept"})
            price = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 700,
                                                    "lookup_key": "kept_key"})
            client.v1.customers.update(customer.id, params={"name": "Kept Name"})
            gone = client.v1.customers.create()
            client.v1.customers.delete(gone.id)
            offset = control(server, "POST", "/_sandbox/clock/advance", seconds=5000)["offset"]
            receiver.wait_for("customer.updated")
            events_before = [e.id for e in client.v1.events.list(params={"limit": 100}).data]

        with private_sandbox(data_path=data) as (server, client):
            kept = client.v1.customers.retrieve(customer.id)
            assert_stripe_shape(kept)
            assert kept.name == "Kept Name" and kept.metadata["k"] == "v"
            assert [c.id for c in client.v1.customers.list(params={"email": "kept@example.com"}).data] == [customer.id]
            with pytest.raises(stripe.InvalidRequestError):
                client.v1.customers.retrieve(gone.id)
            assert client.v1.prices.list(params={"lookup_keys": ["kept_key"]}).data[0].id == price.id
            assert client.v1.prices.retrieve(price.id, params={"expand": ["product"]}).product.name == "Kept"
            assert [e.id for e in client.v1.events.list(params={"limit": 100}).data] == events_before
            assert control(server, "GET", "/_sandbox/stats")["now"] >= customer.created + 5000
            assert server.sandbox.clock.offset == offset
            # the endpoint and its secret survive: the next event is signed so the old secret verifies it
            assert [e.id for e in client.v1.webhook_endpoints.list().data] == [endpoint.id]
            newer = client.v1.customers.create()
            assert newer.created >= customer.created + 5000
            event = receiver.wait_for("customer.created", where=lambda e: e["data"]["object"]["id"] == newer.id)
            assert event["data"]["object"]["email"] is None
            # the new objects come after the old ones in lists
            assert [c.id for c in client.v1.customers.list(params={"limit": 2}).data] == [newer.id, customer.id]
        assert receiver.rejected == []


def test_rolled_secret_and_default_endpoint_survive_restart(tmp_path: Path) -> None:
    data = str(tmp_path / "sandbox.sqlite")
    with WebhookReceiver(secret="whsec_default") as receiver:
        with private_sandbox(data_path=data, webhook_url=receiver.url, webhook_secret="whsec_default") as (s, c):
            (endpoint,) = c.v1.webhook_endpoints.list().data
            control(s, "POST", f"/_sandbox/webhook_endpoints/{endpoint.id}/roll_secret",
                    expire_old_after_seconds=600)
        with private_sandbox(data_path=data, webhook_url=receiver.url, webhook_secret="whsec_default") as (s, c):
            # the default endpoint is not duplicated on restart
            assert [e.id for e in c.v1.webhook_endpoints.list().data] == [endpoint.id]
            c.v1.customers.create()
            receiver.wait_for("customer.created")
            assert receiver.headers[-1]["Stripe-Signature"].count("v1=") == 1
