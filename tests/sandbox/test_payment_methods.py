"""Payment methods through the SDK: test cards and their errors, other types, attach/detach, lists, events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver

BILLING = {"name": "Jenny Rosen", "email": "jenny@example.com"}


@pytest.fixture(scope="module")
def receiver(stripe_client: stripe.StripeClient) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={
            "url": receiver.url, "enabled_events": ["payment_method.attached", "payment_method.detached",
                                                    "payment_method.updated"]})
        receiver.secret = endpoint.secret
        yield receiver
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)


def _card(client: stripe.StripeClient, number: str, **card: Any) -> stripe.PaymentMethod:
    pm = client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123", **card}})
    assert_stripe_shape(pm)
    return pm


def _luhn_complete(prefix: str) -> str:
    """A Luhn-valid number that is not one of Stripe's test cards."""
    for last in "0123456789":
        candidate = prefix + last
        digits = [int(d) for d in reversed(candidate)]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("number", "brand", "funding", "last4"), [
    ("4242424242424242", "visa", "credit", "4242"),
    ("4242 4242 4242 4242", "visa", "credit", "4242"),
    ("4000056655665556", "visa", "debit", "5556"),
    ("5555555555554444", "mastercard", "credit", "4444"),
])
def test_create_card_from_test_number(stripe_client: stripe.StripeClient, number: str, brand: str, funding: str,
                                      last4: str) -> None:
    pm = _card(stripe_client, number)
    assert pm.id.startswith("pm_") and pm.type == "card" and pm.customer is None
    assert pm.card is not None
    assert (pm.card.brand, pm.card.funding, pm.card.last4, pm.card.exp_year) == (brand, funding, last4, 2040)
    again = _card(stripe_client, number)
    assert again.id != pm.id and again.card is not None and again.card.fingerprint == pm.card.fingerprint
    fetched = stripe_client.v1.payment_methods.retrieve(pm.id)
    assert_stripe_shape(fetched)
    assert fetched.id == pm.id


def test_amex_needs_four_digit_cvc(stripe_client: stripe.StripeClient) -> None:
    pm = _card(stripe_client, "378282246310005", cvc="1234")
    assert pm.card is not None and pm.card.brand == "amex"
    with pytest.raises(stripe.CardError) as err:
        _card(stripe_client, "378282246310005", cvc="123")
    assert err.value.code == "invalid_cvc" and err.value.param == "cvc"


@pytest.mark.parametrize(("card", "code", "param"), [
    ({"number": "4242424242424241"}, "incorrect_number", "number"),
    ({"number": "4242"}, "incorrect_number", "number"),
    ({"number": "4242424242424242", "exp_year": 2001}, "invalid_expiry_year", "exp_year"),
    ({"number": "4242424242424242", "exp_month": 13}, "invalid_expiry_month", "exp_month"),
    ({"number": "4242424242424242", "cvc": "12"}, "invalid_cvc", "cvc"),
])
def test_bad_card_details_answer_card_errors(stripe_client: stripe.StripeClient, card: dict[str, Any], code: str,
                                             param: str) -> None:
    with pytest.raises(stripe.CardError) as err:
        _card(stripe_client, **card)
    assert err.value.http_status == 402 and err.value.code == code and err.value.param == param
    assert err.value.error is not None and err.value.error.type == "card_error"


def test_real_card_numbers_are_refused_in_test_mode(stripe_client: stripe.StripeClient) -> None:
    real = _luhn_complete("453201511283036")
    with pytest.raises(stripe.CardError) as err:
        _card(stripe_client, real)
    assert err.value.http_status == 402 and err.value.code == "card_declined"
    assert err.value.error is not None and err.value.error.decline_code == "test_mode_live_card"
    assert "test mode" in (err.value.user_message or "")


def test_missing_card_fields(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"number": "4242424242424242"}})
    assert err.value.http_status == 400 and err.value.param == "card[exp_month]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.create(params={"type": "card"})
    assert err.value.param == "card"
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.create(params={"type": "bitcoin"})  # type: ignore[typeddict-item]
    assert err.value.param == "type"


def test_card_from_token(stripe_client: stripe.StripeClient) -> None:
    for token, brand in (("tok_visa", "visa"), ("tok_mastercard", "mastercard"), ("tok_amex", "amex")):
        pm = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": token}})
        assert_stripe_shape(pm)
        assert pm.card is not None and pm.card.brand == brand
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_nope"}})
    assert err.value.http_status == 404 and err.value.param == "card[token]"


def test_test_ids_retrieve_as_stored_objects(stripe_client: stripe.StripeClient) -> None:
    for test_id, last4 in (("pm_card_visa", "4242"), ("pm_card_mastercard", "4444"), ("pm_card_amex", "0005"),
                           ("pm_card_chargeCustomerFail", "0341")):
        pm = stripe_client.v1.payment_methods.retrieve(test_id)
        assert_stripe_shape(pm)
        assert pm.id == test_id and pm.card is not None and pm.card.last4 == last4
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.retrieve("pm_missing")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_attach_detach_and_list(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "pm-owner@example.com"})
    other = stripe_client.v1.customers.create(params={"email": "pm-other@example.com"})
    # A test id makes a fresh PaymentMethod each time, so it can be attached to many customers.
    first = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    second = stripe_client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer.id})
    theirs = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": other.id})
    for pm in (first, second, theirs):
        assert_stripe_shape(pm)
    assert first.id != theirs.id and first.customer == customer.id and theirs.customer == other.id

    event = receiver.wait_for("payment_method.attached", where=lambda e: e["data"]["object"]["id"] == first.id)
    assert_stripe_shape(event["data"]["object"])
    assert event["data"]["previous_attributes"] == {"customer": None}

    listed = stripe_client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert_stripe_shape(listed)
    assert [pm.id for pm in listed.data] == [second.id, first.id]
    nested = stripe_client.v1.customers.payment_methods.list(customer.id, params={"limit": 1})
    assert_stripe_shape(nested)
    assert [pm.id for pm in nested.data] == [second.id] and nested.has_more
    one = stripe_client.v1.customers.payment_methods.retrieve(customer.id, first.id)
    assert_stripe_shape(one)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.payment_methods.retrieve(customer.id, theirs.id)
    assert stripe_client.v1.payment_methods.list(params={"customer": customer.id, "type": "sepa_debit"}).data == []

    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.attach(first.id, params={"customer": other.id})
    assert err.value.http_status == 400 and err.value.param == "payment_method"
    again = stripe_client.v1.payment_methods.attach(first.id, params={"customer": customer.id})
    assert again.customer == customer.id  # attaching to its own customer again is harmless

    detached = stripe_client.v1.payment_methods.detach(first.id)
    assert_stripe_shape(detached)
    assert detached.customer is None
    event = receiver.wait_for("payment_method.detached", where=lambda e: e["data"]["object"]["id"] == first.id)
    assert event["data"]["previous_attributes"] == {"customer": customer.id}
    assert [pm.id for pm in stripe_client.v1.customers.payment_methods.list(customer.id).data] == [second.id]
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.detach(first.id)
    assert err.value.http_status == 400

    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": "cus_missing"})
    assert err.value.http_status == 404 and err.value.param == "customer"


def test_customer_created_with_payment_method(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"payment_method": "pm_card_chargeCustomerFail"})
    methods = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert_stripe_shape(methods)
    assert len(methods.data) == 1 and methods.data[0].card is not None and methods.data[0].card.last4 == "0341"


def test_update_billing_details_and_metadata(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pm = _card(stripe_client, "4242424242424242")
    updated = stripe_client.v1.payment_methods.update(pm.id, params={
        "billing_details": {"name": "Ada", "address": {"country": "GB", "postal_code": "N1"}},
        "metadata": {"k": "v"}, "card": {"exp_month": 6}})
    assert_stripe_shape(updated)
    assert updated.billing_details.name == "Ada" and updated.billing_details.address is not None
    assert updated.billing_details.address.country == "GB" and updated.metadata.to_dict() == {"k": "v"}
    assert updated.card is not None and updated.card.exp_month == 6
    event = receiver.wait_for("payment_method.updated", where=lambda e: e["data"]["object"]["id"] == pm.id)
    assert_stripe_shape(event["data"]["object"])
    assert "billing_details" in event["data"]["previous_attributes"]


@pytest.mark.parametrize(("params", "field"), [
    ({"type": "sepa_debit", "sepa_debit": {"iban": "DE89 3704 0044 0532 0130 00"}, "billing_details": BILLING},
     "sepa_debit"),
    ({"type": "us_bank_account", "us_bank_account": {"account_number": "000123456789", "routing_number": "110000000",
                                                     "account_holder_type": "individual"},
      "billing_details": BILLING}, "us_bank_account"),
    ({"type": "bacs_debit", "bacs_debit": {"account_number": "00012345", "sort_code": "10-88-00"},
      "billing_details": BILLING}, "bacs_debit"),
    ({"type": "grabpay"}, "grabpay"),
    ({"type": "alipay"}, "alipay"),
    ({"type": "ideal", "ideal": {"bank": "ing"}}, "ideal"),
    ({"type": "fpx", "fpx": {"bank": "maybank2u"}}, "fpx"),
    ({"type": "bancontact", "billing_details": BILLING}, "bancontact"),
    ({"type": "p24", "billing_details": BILLING}, "p24"),
    ({"type": "klarna"}, "klarna"),
    ({"type": "paynow"}, "paynow"),
])
def test_other_types(stripe_client: stripe.StripeClient, params: dict[str, Any], field: str) -> None:
    pm = stripe_client.v1.payment_methods.create(params=params)  # type: ignore[arg-type]
    assert_stripe_shape(pm)
    assert pm.type == field and getattr(pm, field) is not None


def test_bank_details_are_checked(stripe_client: stripe.StripeClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "sepa_debit", "sepa_debit": {"iban": "DE00370400440532013000"}, "billing_details": BILLING},
         "sepa_debit[iban]"),
        ({"type": "sepa_debit", "sepa_debit": {"iban": "DE91370400440000055555"}, "billing_details": BILLING},
         "sepa_debit[iban]"),
        ({"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}}, "billing_details[name]"),
        ({"type": "sepa_debit"}, "sepa_debit[iban]"),
        ({"type": "us_bank_account", "us_bank_account": {"account_number": "000123456789", "routing_number": "11"},
          "billing_details": BILLING}, "us_bank_account[routing_number]"),
        ({"type": "us_bank_account", "us_bank_account": {"account_number": "000123456789",
                                                         "routing_number": "110000000"}}, "billing_details[name]"),
        ({"type": "grabpay", "card": {"number": "4242424242424242"}}, "card"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.payment_methods.create(params=params)  # type: ignore[arg-type]
        assert err.value.http_status == 400 and err.value.param == param, params


def test_one_time_methods_cannot_be_attached(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.create(params={"type": "grabpay"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert err.value.http_status == 400
    sepa = stripe_client.v1.payment_methods.create(params={
        "type": "sepa_debit", "sepa_debit": {"iban": "AT611904300234573201"}, "billing_details": BILLING})
    attached = stripe_client.v1.payment_methods.attach(sepa.id, params={"customer": customer.id})
    assert_stripe_shape(attached)
    assert attached.customer == customer.id
