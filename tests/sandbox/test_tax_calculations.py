"""Stripe Tax calculations from the sandbox's table (issue 18, item 1): a German seller's VAT on exclusive and
inclusive prices, the reverse charge for a French business with a verified VAT ID, the UK, a US state, and
places not collected; tax IDs checked for format; through the SDK, with Stripe's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from tests.sandbox.control import private_sandbox
from tests.stripe_shapes import assert_stripe_shape


@pytest.fixture(scope="module")
def client() -> Iterator[stripe.StripeClient]:
    with private_sandbox() as (_server, sdk):
        yield sdk


def calc(client: stripe.StripeClient, country: str, amount: int = 1000, behavior: str = "exclusive",
         state: str | None = None, tax_ids: list[dict[str, str]] | None = None) -> Any:
    address = {"country": country, **({"state": state} if state else {})}
    return client.v1.tax.calculations.create(params={
        "currency": "eur", "line_items": [{"amount": amount, "reference": "plus", "tax_behavior": behavior}],
        "customer_details": {"address": address, "address_source": "billing", "tax_ids": tax_ids or []}})


def test_needs_active_tax_settings(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        calc(client, "DE")
    assert refused.value.code == "stripe_tax_inactive"
    client.v1.tax.settings.update(params={"head_office": {"address": {"country": "DE"}}})


def test_german_vat_on_an_exclusive_price(client: stripe.StripeClient) -> None:
    result = calc(client, "DE")
    assert_stripe_shape(result)
    assert (result.amount_total, result.tax_amount_exclusive, result.tax_amount_inclusive) == (1190, 190, 0)
    [line] = result.tax_breakdown
    assert (line.taxability_reason, line.tax_rate_details.percentage_decimal, line.taxable_amount) == \
        ("standard_rated", "19", 1000)
    assert client.v1.tax.calculations.retrieve(result.id).amount_total == 1190


def test_uk_vat_split_out_of_an_inclusive_price(client: stripe.StripeClient) -> None:
    result = calc(client, "GB", amount=1200, behavior="inclusive")
    assert (result.amount_total, result.tax_amount_inclusive, result.tax_amount_exclusive) == (1200, 200, 0)
    assert result.tax_breakdown[0].taxable_amount == 1000 and result.tax_breakdown[0].inclusive is True


def test_reverse_charge_for_a_french_business_with_a_valid_vat_id(client: stripe.StripeClient) -> None:
    business = calc(client, "FR", tax_ids=[{"type": "eu_vat", "value": "FR12345678901"}])
    assert (business.amount_total, business.tax_amount_exclusive) == (1000, 0)
    assert business.tax_breakdown[0].taxability_reason == "reverse_charge"
    consumer = calc(client, "FR")
    assert (consumer.tax_amount_exclusive, consumer.tax_breakdown[0].tax_rate_details.percentage_decimal) == \
        (200, "20")
    unverified = calc(client, "FR", tax_ids=[{"type": "eu_vat", "value": "FR111111111XX"}])
    assert unverified.tax_amount_exclusive == 200  # a VAT ID that fails verification is no reverse charge
    with pytest.raises(stripe.InvalidRequestError) as malformed:
        calc(client, "FR", tax_ids=[{"type": "eu_vat", "value": "FR12"}])
    assert malformed.value.code == "tax_id_invalid"


def test_us_state_and_places_not_collected(client: stripe.StripeClient) -> None:
    assert calc(client, "US", state="NY").tax_amount_exclusive == 40
    oregon = calc(client, "US", state="OR")
    assert oregon.tax_amount_exclusive == 0 and oregon.tax_breakdown[0].taxability_reason == "not_collecting"
    assert calc(client, "CA", state="ON").tax_breakdown[0].tax_rate_details.tax_type == "hst"
    assert calc(client, "AU").tax_amount_exclusive == 100
