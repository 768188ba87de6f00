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


def test_idempotency_keys_survive_restart_and_expire_after_24_hours(tmp_path: Path) -> None:
    data = str(tmp_path / "sandbox.sqlite")
    params = {"email": "once@example.com", "metadata": {"order": "42"}}
    with private_sandbox(data_path=data) as (server, client):
        first = client.v1.customers.create(params=params, options={"idempotency_key": "restart-key"})
        intent = client.v1.payment_intents.create(
            params={"amount": 500, "currency": "usd", "payment_method": "pm_card_visa"},
            options={"idempotency_key": "pi-key"})
        assert control(server, "GET", "/_sandbox/stats")["idempotency_keys"] == 2

    with private_sandbox(data_path=data) as (server, client):
        again = client.v1.customers.create(params=params, options={"idempotency_key": "restart-key"})
        assert again.id == first.id and again.last_response.headers["Idempotent-Replayed"] == "true"
        assert [c.id for c in client.v1.customers.list(params={"email": "once@example.com"}).data] == [first.id]
        with pytest.raises(stripe.IdempotencyError):
            client.v1.customers.create(params={"email": "other@example.com"},
                                       options={"idempotency_key": "restart-key"})
        # Stripe keeps keys 24 hours; the sandbox's clock stands for Stripe's time.
        control(server, "POST", "/_sandbox/clock/advance", seconds=23 * 3600)
        replayed = client.v1.payment_intents.create(
            params={"amount": 500, "currency": "usd", "payment_method": "pm_card_visa"},
            options={"idempotency_key": "pi-key"})
        assert replayed.id == intent.id
        control(server, "POST", "/_sandbox/clock/advance", seconds=3600 + 1)
        fresh = client.v1.customers.create(params=params, options={"idempotency_key": "restart-key"})
        assert fresh.id != first.id and "Idempotent-Replayed" not in fresh.last_response.headers
        assert control(server, "GET", "/_sandbox/stats")["idempotency_keys"] == 1  # pi-key is forgotten

    with private_sandbox(data_path=data) as (server, client):
        assert control(server, "GET", "/_sandbox/stats")["idempotency_keys"] == 1  # pruned rows left the file
        kept = client.v1.customers.create(params=params, options={"idempotency_key": "restart-key"})
        assert kept.id == fresh.id and kept.last_response.headers["Idempotent-Replayed"] == "true"
