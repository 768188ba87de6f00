"""Stripe's ``return_url`` rule on SetupIntents confirmed through the API (issue 17, item 5): a method that
redirects the customer to authorize needs one; automatic payment methods that may redirect need one whatever
the method; a card, or ``allow_redirects=never``, does not."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_shapes import assert_stripe_shape

RETURN_URL = "https://shop.example/setup-done"


def test_a_redirect_method_needs_a_return_url(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "ideal@example.com"})
    pm = stripe_client.v1.payment_methods.create(params={"type": "ideal"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.setup_intents.create(params={"customer": customer.id, "payment_method": pm.id,
                                                      "payment_method_types": ["ideal"], "confirm": True})
    assert refused.value.error is not None and refused.value.error.param == "return_url"
    assert "A `return_url` must be specified because this SetupIntent uses a payment method (ideal)" \
        in str(refused.value.error.message)
    si = stripe_client.v1.setup_intents.create(params={"customer": customer.id, "payment_method": pm.id,
                                                       "payment_method_types": ["ideal"]})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.setup_intents.confirm(si.id)
    confirmed = stripe_client.v1.setup_intents.confirm(si.id, params={"return_url": RETURN_URL})
    assert_stripe_shape(confirmed)
    assert confirmed.status == "succeeded"


def test_automatic_methods_that_may_redirect_need_a_return_url(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "auto@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.setup_intents.create(params={
            "customer": customer.id, "payment_method": "pm_card_visa", "confirm": True,
            "automatic_payment_methods": {"enabled": True}})
    error = refused.value.error
    assert error is not None and error.param is None and error.code is None
    assert "you must provide a `return_url`" in str(error.message)
    assert error.setup_intent is not None
    never = stripe_client.v1.setup_intents.create(params={
        "customer": customer.id, "payment_method": "pm_card_visa", "confirm": True,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}})
    assert never.status == "succeeded"


def test_a_card_needs_no_return_url(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "card@example.com"})
    si = stripe_client.v1.setup_intents.create(params={"customer": customer.id, "payment_method": "pm_card_visa",
                                                       "confirm": True})
    assert si.status == "succeeded"
