"""Automatic tax on subscriptions and invoices (issue 18, item 1), through the official SDK: the seller is in
Germany; a German buyer pays 19 % VAT on top of an exclusive price or inside an inclusive one, a Californian
7.25 % sales tax, a French business with a valid VAT ID nothing (the reverse charge); renewals, prorations,
previews and one-off invoices are taxed the same way; Stripe's errors when the customer has no address or
Stripe Tax is not active. Also the customer's tax IDs the reverse charge reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from tests.sandbox.billing_support import T0, setup
from tests.sandbox.control import private_sandbox
from tests.stripe_shapes import assert_stripe_shape

MONTH = 31 * 86400
GERMANY = {"country": "DE", "city": "Berlin", "line1": "Unter den Linden 1", "postal_code": "10117"}
CALIFORNIA = {"country": "US", "state": "CA", "city": "San Francisco", "line1": "1 Market St",
              "postal_code": "94105"}
FRANCE = {"country": "FR", "city": "Paris", "line1": "1 rue de Rivoli", "postal_code": "75001"}


@pytest.fixture(scope="module")
def client() -> Iterator[stripe.StripeClient]:
    with private_sandbox() as (_, client):
        client.v1.tax.settings.update(params={"head_office": {"address": {"country": "DE"}},
                                              "defaults": {"tax_behavior": "exclusive"}})
        yield client


def customer_at(client: stripe.StripeClient, address: dict[str, str] | None, **extra: Any) -> Any:
    """A customer on a fresh test clock with a card, at ``address``."""
    s = setup(client)
    params: dict[str, Any] = {"address": address} if address else {}
    if params:
        client.v1.customers.update(s.customer.id, params=params)
    if extra:
        client.v1.customers.update(s.customer.id, params=extra)
    return s


def monthly(client: stripe.StripeClient, amount: int, currency: str, behavior: str) -> Any:
    return client.v1.prices.create(params={"product_data": {"name": "Pro"}, "unit_amount": amount,
                                           "currency": currency, "recurring": {"interval": "month"},
                                           "tax_behavior": behavior})


def taxed_subscription(client: stripe.StripeClient, s: Any, price: Any) -> tuple[Any, Any]:
    sub = client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                                 "automatic_tax": {"enabled": True}})
    assert_stripe_shape(sub)
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert_stripe_shape(invoice)
    return sub, invoice


def only_tax(invoice: Any) -> Any:
    assert len(invoice.total_taxes) == 1
    return invoice.total_taxes[0]


def test_german_customer_pays_19_percent_on_top_of_an_exclusive_price(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    sub, invoice = taxed_subscription(client, s, monthly(client, 1000, "eur", "exclusive"))
    assert sub.automatic_tax.enabled is True and sub.automatic_tax.liability is not None
    assert sub.automatic_tax.liability.type == "self"
    assert invoice.automatic_tax.enabled is True and invoice.automatic_tax.status == "complete"
    assert invoice.automatic_tax.provider == "stripe"
    assert (invoice.subtotal, invoice.subtotal_excluding_tax, invoice.total_excluding_tax, invoice.total) \
        == (1000, 1000, 1000, 1190)
    assert invoice.amount_paid == 1190 and invoice.status == "paid"
    tax = only_tax(invoice)
    assert (tax.amount, tax.taxable_amount, tax.tax_behavior, tax.taxability_reason, tax.type) \
        == (190, 1000, "exclusive", "standard_rated", "tax_rate_details")
    rate = client.v1.tax_rates.retrieve(str(tax.tax_rate_details.tax_rate))
    assert_stripe_shape(rate)
    assert (rate.percentage, rate.country, rate.tax_type, rate.inclusive) == (19.0, "DE", "vat", False)
    (line,) = invoice.lines.data
    assert line.amount == 1000 and [t.amount for t in line.taxes] == [190]
    assert "VAT DE (19 %): €1.90" in httpx.get(str(invoice.hosted_invoice_url)).text


def test_an_inclusive_price_carves_the_vat_out_of_the_same_total(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    _, invoice = taxed_subscription(client, s, monthly(client, 1190, "eur", "inclusive"))
    assert (invoice.subtotal, invoice.subtotal_excluding_tax, invoice.total_excluding_tax, invoice.total) \
        == (1190, 1000, 1000, 1190)
    tax = only_tax(invoice)
    assert (tax.amount, tax.taxable_amount, tax.tax_behavior) == (190, 1000, "inclusive")
    assert invoice.amount_paid == 1190


def test_an_unspecified_price_takes_the_settings_default_behaviour(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    _, invoice = taxed_subscription(client, s, monthly(client, 1000, "eur", "unspecified"))
    assert only_tax(invoice).tax_behavior == "exclusive" and invoice.total == 1190


def test_californian_customer_pays_state_sales_tax(client: stripe.StripeClient) -> None:
    s = customer_at(client, CALIFORNIA)
    _, invoice = taxed_subscription(client, s, monthly(client, 1000, "usd", "exclusive"))
    tax = only_tax(invoice)
    assert tax.amount == 73 and tax.taxability_reason == "standard_rated"  # 7.25 % of 10.00, half up
    assert invoice.total == 1073
    rate = client.v1.tax_rates.retrieve(str(tax.tax_rate_details.tax_rate))
    assert (rate.state, rate.tax_type, rate.jurisdiction) == ("CA", "sales_tax", "US - CA")


def test_eu_business_with_a_valid_vat_id_gets_the_reverse_charge(client: stripe.StripeClient) -> None:
    s = customer_at(client, FRANCE)
    tax_id = client.v1.customers.tax_ids.create(s.customer.id, params={"type": "eu_vat", "value": "FR12345678901"})
    assert_stripe_shape(tax_id)
    assert tax_id.verification is not None and tax_id.verification.status == "verified"
    assert tax_id.country == "FR"
    _, invoice = taxed_subscription(client, s, monthly(client, 1000, "eur", "exclusive"))
    tax = only_tax(invoice)
    assert (tax.amount, tax.taxable_amount, tax.taxability_reason) == (0, 1000, "reverse_charge")
    assert invoice.total == 1000 and invoice.amount_paid == 1000
    assert [(t.type, t.value) for t in invoice.customer_tax_ids or []] == [("eu_vat", "FR12345678901")]
    page = httpx.get(str(invoice.hosted_invoice_url)).text
    assert "Reverse charge: VAT to be accounted for by the recipient." in page and "FR12345678901" in page


def test_an_unverified_vat_id_pays_the_buyers_vat(client: stripe.StripeClient) -> None:
    s = customer_at(client, FRANCE)
    client.v1.customers.tax_ids.create(s.customer.id, params={"type": "eu_vat", "value": "FR111111111"})
    _, invoice = taxed_subscription(client, s, monthly(client, 1000, "eur", "exclusive"))
    assert only_tax(invoice).amount == 200 and invoice.total == 1200  # France's 20 %


def test_customer_tax_ids_are_listed_checked_and_deleted(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}]})
    listed = client.v1.customers.tax_ids.list(customer.id)
    assert_stripe_shape(listed)
    assert [t.value for t in listed.data] == ["DE123456789"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.tax_ids.create(customer.id, params={"type": "eu_vat", "value": "XX1"})
    assert refused.value.code == "tax_id_invalid"
    deleted = client.v1.customers.tax_ids.delete(customer.id, listed.data[0].id)
    assert deleted.deleted is True and client.v1.customers.tax_ids.list(customer.id).data == []


def test_renewal_on_a_test_clock_is_taxed_and_its_events_carry_the_tax(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    sub, _ = taxed_subscription(client, s, monthly(client, 1000, "eur", "exclusive"))
    preview = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert_stripe_shape(preview)
    assert preview.total == 1190 and only_tax(preview).amount == 190
    s.advance(T0 + MONTH + 7200)
    first, renewal = s.invoices()
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
    assert renewal.total == 1190 and only_tax(renewal).amount == 190
    events = [e for e in s.events() if e["type"] in ("invoice.created", "invoice.paid")
              and e["data"]["object"]["id"] == renewal.id]
    assert [e["type"] for e in events] == ["invoice.created", "invoice.paid"]
    assert all(e["data"]["object"]["total_taxes"][0]["amount"] == 190 for e in events)


def test_a_proration_invoice_is_taxed(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    sub, _ = taxed_subscription(client, s, monthly(client, 1000, "eur", "exclusive"))
    bigger = monthly(client, 3000, "eur", "exclusive")
    s.advance(T0 + 15 * 86400)
    client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": bigger.id}], "proration_behavior": "always_invoice"})
    invoice = s.invoices()[-1]
    assert_stripe_shape(invoice)
    assert invoice.billing_reason == "subscription_update"
    net = sum(line.amount for line in invoice.lines.data)
    assert net > 0 and invoice.total_excluding_tax == net
    assert invoice.total == net + round(net * 0.19)
    assert all(line.taxes and line.taxes[0].taxability_reason == "standard_rated" for line in invoice.lines.data)


def test_enabling_tax_on_an_existing_subscription_taxes_its_next_invoice(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    price = monthly(client, 1000, "eur", "exclusive")
    sub = client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}]})
    assert sub.automatic_tax.enabled is False
    assert client.v1.invoices.retrieve(str(sub.latest_invoice)).total_taxes == []
    updated = client.v1.subscriptions.update(sub.id, params={"automatic_tax": {"enabled": True}})
    assert_stripe_shape(updated)
    assert updated.automatic_tax.enabled is True
    assert client.v1.invoices.create_preview(params={"subscription": sub.id}).total == 1190
    untaxed = client.v1.invoices.create_preview(params={"subscription": sub.id, "automatic_tax": {"enabled": False}})
    assert untaxed.total == 1000 and untaxed.total_taxes == []


def test_a_one_off_invoice_with_automatic_tax(client: stripe.StripeClient) -> None:
    s = customer_at(client, GERMANY)
    invoice = client.v1.invoices.create(params={"customer": s.customer.id, "currency": "eur",
                                                "automatic_tax": {"enabled": True}, "auto_advance": False})
    price = client.v1.prices.create(params={"product_data": {"name": "Setup fee"}, "unit_amount": 5000,
                                            "currency": "eur", "tax_behavior": "exclusive"})
    client.v1.invoice_items.create(params={"customer": s.customer.id, "invoice": invoice.id,
                                           "pricing": {"price": price.id}})
    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert_stripe_shape(finalized)
    assert finalized.total == 5950 and only_tax(finalized).amount == 950
    assert finalized.amount_due == 5950


def test_a_customer_without_an_address_is_refused(client: stripe.StripeClient) -> None:
    s = customer_at(client, None)
    price = monthly(client, 1000, "eur", "exclusive")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                               "automatic_tax": {"enabled": True}})
    error = refused.value
    assert error.http_status == 400 and error.code == "customer_tax_location_invalid"
    assert error.error is not None and error.error.param == "customer"
    assert str(error.error.message).startswith("The customer's location isn't recognized.")
    assert client.v1.subscriptions.list(params={"customer": s.customer.id}).data == []


def test_automatic_tax_needs_stripe_tax_active() -> None:
    with private_sandbox() as (_, client):
        s = customer_at(client, GERMANY)
        price = monthly(client, 1000, "eur", "exclusive")
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                                   "automatic_tax": {"enabled": True}})
        assert refused.value.code == "stripe_tax_inactive"
        assert str(refused.value.error.message if refused.value.error else "").startswith(
            "Stripe Tax has not been activated on your account.")
