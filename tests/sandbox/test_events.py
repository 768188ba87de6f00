"""Events: shape, retrieve, list filters (``type``, ``types[]``, ``created``), ``request``, ``previous_attributes``."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape


def test_event_shape_and_request_fields() -> None:
    with private_sandbox() as (server, client):
        customer = client.v1.customers.create(params={"email": "ev@example.com"},
                                              options={"idempotency_key": "create-ev-1"})
        listed = client.v1.events.list()
        assert_stripe_shape(listed)
        (event,) = listed.data
        assert event.type == "customer.created" and event.id.startswith("evt_")
        assert event.data.object.id == customer.id and event.livemode is False
        assert event.request.idempotency_key == "create-ev-1"
        assert event.request.id == customer.last_response.request_id
        assert event.api_version == "2026-10-28.endive"
        fetched = client.v1.events.retrieve(event.id)
        assert_stripe_shape(fetched)
        assert_stripe_shape(fetched.data.object.to_dict())
        assert fetched.id == event.id

        # the SDK sends its own random key on every POST: it shows up too
        client.v1.customers.update(customer.id, params={"name": "Eve"})
        update = client.v1.events.list(params={"type": "customer.updated"}).data[0]
        assert update.request.idempotency_key and update.request.idempotency_key != "create-ev-1"

        # triggered from the control API: no request
        control(server, "POST", "/_sandbox/trigger", event="product.created")
        triggered = client.v1.events.list(params={"type": "product.created"}).data[0]
        assert triggered.request.id is None and triggered.request.idempotency_key is None


def test_event_data_is_a_snapshot_with_previous_attributes() -> None:
    with private_sandbox() as (server, client):
        customer = client.v1.customers.create(params={"name": "Before", "metadata": {"a": "1"}})
        client.v1.customers.update(customer.id, params={"name": "After", "metadata": {"b": "2"}})
        created, = client.v1.events.list(params={"type": "customer.created"}).data
        updated, = client.v1.events.list(params={"type": "customer.updated"}).data
        assert created.data.object.name == "Before"  # not changed by the later update
        assert updated.data.object.name == "After"
        assert updated.data.previous_attributes.to_dict() == {"name": "Before", "metadata": {"a": "1"}}
        assert "previous_attributes" not in created.data

        product = client.v1.products.create(params={"name": "P"})
        price = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 5})
        client.v1.prices.update(price.id, params={"active": False})
        price_updated, = client.v1.events.list(params={"type": "price.updated"}).data
        assert price_updated.data.previous_attributes.to_dict() == {"active": True}


def test_list_filters() -> None:
    with private_sandbox() as (server, client):
        client.v1.customers.create()
        product = client.v1.products.create(params={"name": "P"})
        client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 5})
        client.v1.customers.create()

        def types(**params: object) -> list[str]:
            return [e.type for e in client.v1.events.list(params=params).data]  # type: ignore[arg-type]

        assert types() == ["customer.created", "price.created", "product.created", "customer.created"]
        assert types(type="customer.created") == ["customer.created", "customer.created"]
        assert types(types=["price.created", "product.created"]) == ["price.created", "product.created"]
        assert types(type="pr*") == ["price.created", "product.created"]
        assert types(type="nothing.happened") == []
        with pytest.raises(stripe.InvalidRequestError) as both:
            client.v1.events.list(params={"type": "a", "types": ["b"]})
        assert both.value.param == "types"

        now = control(server, "GET", "/_sandbox/stats")["now"]
        assert len(types(created={"gte": now - 60})) == 4
        assert types(created={"gt": now + 10}) == []
        assert len(types(created={"lte": now + 10, "gte": now - 60})) == 4
        control(server, "POST", "/_sandbox/clock/advance", seconds=120)
        client.v1.customers.create()
        assert types(created={"gte": now + 100}) == ["customer.created"]
        assert len(types(created={"lt": now + 100})) == 4
        assert len(types(created=now + 120)) in (0, 1)  # exact second
        with pytest.raises(stripe.InvalidRequestError) as bad:
            client.v1.events.list(params={"created": {"after": 1}})  # type: ignore[typeddict-unknown-key]
        assert bad.value.param == "created[after]"

        page = client.v1.events.list(params={"limit": 2})
        assert page.has_more and len(page.data) == 2
        assert len(list(page.auto_paging_iter())) == 5


def test_retrieve_missing_event() -> None:
    with private_sandbox() as (server, client):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.events.retrieve("evt_missing")
        assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
