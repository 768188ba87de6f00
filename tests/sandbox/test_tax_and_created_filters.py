"""Tax configuration (Stripe Tax settings, tax rates) and the ``created`` filter of the Checkout Session and
invoice lists, through the SDK, with Stripe's shapes."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape


def test_stripe_tax_settings_turn_active_with_a_head_office() -> None:
    with private_sandbox() as (server, client):
        settings = client.v1.tax.settings.retrieve()
        assert_stripe_shape(settings)
        assert settings.status == "pending" and settings.status_details.pending.missing_fields == ["head_office"]
        updated = client.v1.tax.settings.update(params={
            "head_office": {"address": {"country": "de", "postal_code": "10115"}},
            "defaults": {"tax_behavior": "exclusive"}})
        assert_stripe_shape(updated)
        assert updated.status == "active" and updated.head_office.address.country == "DE"
        assert client.v1.tax.settings.retrieve().defaults.tax_behavior == "exclusive"
        assert client.v1.events.list(params={"type": "tax.settings.updated"}).data
        with pytest.raises(stripe.InvalidRequestError) as bad:
            client.v1.tax.settings.update(params={"head_office": {"address": {"country": "Germany"}}})
        assert bad.value.param == "head_office[address][country]"


def test_tax_rates_create_update_list() -> None:
    with private_sandbox() as (server, client):
        rate = client.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 19.0, "inclusive": False,
                                                  "country": "DE", "jurisdiction": "DE", "tax_type": "vat"})
        assert_stripe_shape(rate)
        assert rate.id.startswith("txr_") and rate.percentage == 19.0 and rate.active is True
        client.v1.tax_rates.create(params={"display_name": "GST", "percentage": 9, "inclusive": True})
        client.v1.tax_rates.update(rate.id, params={"active": False})
        assert client.v1.tax_rates.retrieve(rate.id).active is False
        active = client.v1.tax_rates.list(params={"active": True})
        assert_stripe_shape(active)
        assert [r.display_name for r in active.data] == ["GST"]
        assert len(client.v1.tax_rates.list().data) == 2
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.tax_rates.create(params={"display_name": "X", "percentage": 5})
        assert missing.value.param == "inclusive"
        with pytest.raises(stripe.InvalidRequestError) as too_high:
            client.v1.tax_rates.create(params={"display_name": "X", "percentage": 150, "inclusive": False})
        assert too_high.value.param == "percentage"


def test_checkout_session_and_invoice_lists_filter_on_created() -> None:
    with private_sandbox() as (server, client):
        def session() -> str:
            return client.v1.checkout.sessions.create(params={
                "mode": "payment", "success_url": "https://shop.example/ok",
                "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500,
                                                              "product_data": {"name": "Coins"}}}]}).id

        customer = client.v1.customers.create()
        first_session = session()
        first_invoice = client.v1.invoices.create(params={"customer": customer.id}).id
        now = control(server, "POST", "/_sandbox/clock/advance", seconds=3600)["now"]
        second_session = session()
        second_invoice = client.v1.invoices.create(params={"customer": customer.id}).id

        recent = client.v1.checkout.sessions.list(params={"created": {"gte": now}})
        assert [s.id for s in recent.data] == [second_session]
        older = client.v1.checkout.sessions.list(params={"created": {"lt": now}})
        assert [s.id for s in older.data] == [first_session]
        assert [i.id for i in client.v1.invoices.list(params={"created": {"gt": now - 1}}).data] == [second_invoice]
        assert [i.id for i in client.v1.invoices.list(params={"created": {"lte": now - 1}}).data] == [first_invoice]
