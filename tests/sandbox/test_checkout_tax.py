"""Automatic tax on the sandbox's hosted Checkout (issue 18, item 1): the page asks for the billing address
(and a business tax ID), shows the tax line before taking the money, and the session, its PaymentIntent and
its customer details carry it: 19 % VAT on an exclusive price for a German buyer, the reverse charge for a
French business with a valid VAT ID, and the UK's 20 % split out of an inclusive price."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from tests.sandbox.control import private_sandbox
from tests.stripe_shapes import assert_stripe_shape

CARD = {"email": "buyer@example.com", "cardNumber": "4242424242424242", "cardExpiry": "12 / 34", "cardCvc": "123",
        "billingName": "Ada Lovelace"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Any, stripe.StripeClient]]:
    with private_sandbox() as (server, client):
        client.v1.tax.settings.update(params={"head_office": {"address": {"country": "DE"}},
                                              "defaults": {"tax_behavior": "exclusive"}})
        yield server, client


def session(client: stripe.StripeClient, behavior: str = "unspecified", **extra: Any) -> Any:
    product = client.v1.products.create(params={"name": "Plus pack"})
    price = client.v1.prices.create(params={"product": product.id, "unit_amount": 1000 if behavior != "inclusive"
                                             else 1200, "currency": "eur", "tax_behavior": behavior})
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    return client.v1.checkout.sessions.create(params={
        "mode": "payment", "customer": customer.id, "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "https://shop.example/ok", "automatic_tax": {"enabled": True},
        "customer_update": {"address": "auto", "name": "auto"}, "tax_id_collection": {"enabled": True},
        "billing_address_collection": "required", **extra})


def post(server: Any, session_id: str, **fields: str) -> httpx.Response:
    return httpx.post(f"{server.url}/c/pay/{session_id}", data={**CARD, **fields})


def test_a_customer_without_an_address_needs_customer_update(sandbox: tuple[Any, stripe.StripeClient]) -> None:
    _, client = sandbox
    customer = client.v1.customers.create(params={"email": "x@example.com"})
    price = client.v1.prices.create(params={"product_data": {"name": "x"}, "unit_amount": 500, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params={
            "mode": "payment", "customer": customer.id, "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://shop.example/ok", "automatic_tax": {"enabled": True}})
    assert refused.value.code == "customer_tax_location_invalid"


def test_german_buyer_pays_19_percent_vat_on_top(sandbox: tuple[Any, stripe.StripeClient]) -> None:
    server, client = sandbox
    created = session(client)
    assert_stripe_shape(created)
    assert created.automatic_tax.status == "requires_location_inputs"
    page = httpx.get(created.url)
    assert "Calculated from your address" in page.text and 'autocomplete="country"' in page.text
    shown = post(server, created.id, country="DE", postalCode="10115")
    assert shown.status_code == 200 and "VAT (19 %)" in shown.text and "€1.90" in shown.text
    assert "Check the total and pay" in shown.text and "€11.90" in shown.text
    assert post(server, created.id, country="DE", postalCode="10115").status_code == 303
    paid = client.v1.checkout.sessions.retrieve(created.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(paid)
    assert (paid.amount_subtotal, paid.total_details.amount_tax, paid.amount_total) == (1000, 190, 1190)
    assert paid.payment_intent.amount == 1190 and paid.customer_details.address.country == "DE"
    assert paid.total_details.breakdown.taxes[0].taxability_reason == "standard_rated"
    assert client.v1.customers.retrieve(paid.customer).address.country == "DE"  # customer_update[address]=auto


def test_french_business_with_a_vat_id_gets_the_reverse_charge(sandbox: tuple[Any, stripe.StripeClient]) -> None:
    server, client = sandbox
    created = session(client)
    bad = post(server, created.id, country="FR", taxId="FR12")
    assert bad.status_code == 400 and "Your tax ID is invalid." in bad.text
    assert post(server, created.id, country="FR", taxId="FR 12345678901").status_code == 303  # nothing added
    paid = client.v1.checkout.sessions.retrieve(created.id)
    assert (paid.total_details.amount_tax, paid.amount_total) == (0, 1000)
    assert paid.customer_details.tax_exempt == "reverse"
    assert paid.customer_details.tax_ids[0].to_dict() == {"type": "eu_vat", "value": "FR12345678901"}
    assert paid.total_details.breakdown.taxes[0].taxability_reason == "reverse_charge"


def test_uk_vat_is_split_out_of_an_inclusive_price(sandbox: tuple[Any, stripe.StripeClient]) -> None:
    server, client = sandbox
    created = session(client, behavior="inclusive")
    assert post(server, created.id, country="GB").status_code == 303  # the total does not change
    paid = client.v1.checkout.sessions.retrieve(created.id)
    assert (paid.amount_total, paid.total_details.amount_tax) == (1200, 200)
    assert paid.total_details.breakdown.taxes[0].taxable_amount == 1000
    assert paid.total_details.breakdown.taxes[0].rate.inclusive is True


def subscription_session(client: stripe.StripeClient, **extra: Any) -> Any:
    price = client.v1.prices.create(params={"product_data": {"name": "Pro"}, "unit_amount": 1000, "currency": "eur",
                                            "recurring": {"interval": "month"}, "tax_behavior": "exclusive"})
    return client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "https://shop.example/ok", "automatic_tax": {"enabled": True},
        "tax_id_collection": {"enabled": True}, "billing_address_collection": "required", **extra})


def test_subscription_checkout_taxes_the_subscription_and_its_invoices(
        sandbox: tuple[Any, stripe.StripeClient]) -> None:
    server, client = sandbox
    created = subscription_session(client)
    assert_stripe_shape(created)
    shown = post(server, created.id, country="DE", postalCode="10115")
    assert shown.status_code == 200 and "€11.90" in shown.text
    assert post(server, created.id, country="DE", postalCode="10115").status_code == 303
    paid = client.v1.checkout.sessions.retrieve(created.id, params={"expand": ["subscription.latest_invoice"]})
    assert_stripe_shape(paid)
    assert paid.status == "complete" and paid.amount_total == 1190
    sub = paid.subscription
    assert sub.automatic_tax.enabled is True
    invoice = sub.latest_invoice
    assert (invoice.total, invoice.amount_paid, invoice.total_taxes[0].amount) == (1190, 1190, 190)
    assert client.v1.customers.retrieve(paid.customer).address.country == "DE"


def test_subscription_checkout_saves_the_vat_id_for_the_reverse_charge(
        sandbox: tuple[Any, stripe.StripeClient]) -> None:
    server, client = sandbox
    created = subscription_session(client)
    assert post(server, created.id, country="FR", taxId="FR12345678901").status_code == 303
    paid = client.v1.checkout.sessions.retrieve(created.id, params={"expand": ["subscription.latest_invoice"]})
    invoice = paid.subscription.latest_invoice
    assert invoice.total == 1000 and invoice.total_taxes[0].taxability_reason == "reverse_charge"
    assert [t.value for t in client.v1.customers.tax_ids.list(paid.customer).data] == ["FR12345678901"]


def test_setup_mode_checkout_refuses_automatic_tax(sandbox: tuple[Any, stripe.StripeClient]) -> None:
    _, client = sandbox
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params={
            "mode": "setup", "currency": "eur", "success_url": "https://shop.example/ok",
            "automatic_tax": {"enabled": True}})
    assert refused.value.error is not None and refused.value.error.param == "automatic_tax[enabled]"
