"""Refunds and charges through the SDK: full, partial and over-refunds, the charge's refund state, lists,
updates, the refund-failing test card, and the events each change sends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.control import control
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def receiver(stripe_client: stripe.StripeClient) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": [
            "refund.created", "refund.updated", "refund.failed", "charge.refunded", "charge.refund.updated",
            "charge.updated"]})
        receiver.secret = endpoint.secret
        yield receiver
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)


def _event(receiver: WebhookReceiver, event_type: str, object_id: str,
           where: Any = lambda e: True) -> dict[str, Any]:
    event = receiver.wait_for(event_type, where=lambda e: e["data"]["object"]["id"] == object_id and where(e))
    assert_stripe_shape(event["data"]["object"])
    return event


def _paid(client: stripe.StripeClient, amount: int = 1000, payment_method: str = "pm_card_visa",
          **params: Any) -> stripe.PaymentIntent:
    pi = client.v1.payment_intents.create(params={
        "amount": amount, "currency": "usd", "payment_method": payment_method, "confirm": True,
        "payment_method_types": ["card"], **params})
    assert pi.status == "succeeded"
    return pi


def _charge(client: stripe.StripeClient, charge_id: str) -> stripe.Charge:
    charge = client.v1.charges.retrieve(charge_id)
    assert_stripe_shape(charge)
    return charge


def test_full_refund_by_payment_intent(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    customer = stripe_client.v1.customers.create()
    pi = _paid(stripe_client, customer=customer.id)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "reason": "requested_by_customer",
                                                     "metadata": {"ticket": "9"}})
    assert_stripe_shape(refund)
    assert refund.id.startswith("re_") and refund.amount == 1000 and refund.status == "succeeded"
    assert refund.charge == pi.latest_charge and refund.payment_intent == pi.id
    assert refund.reason == "requested_by_customer" and refund.customer == customer.id
    assert refund.metadata is not None and refund.metadata.to_dict() == {"ticket": "9"}
    charge = _charge(stripe_client, str(pi.latest_charge))
    assert charge.refunded and charge.amount_refunded == 1000
    assert charge.refunds is not None and [r.id for r in charge.refunds.data] == [refund.id]
    _event(receiver, "refund.created", refund.id)
    event = _event(receiver, "charge.refunded", charge.id)
    assert event["data"]["previous_attributes"] == {"amount_refunded": 0, "refunded": False}
    assert event["data"]["object"]["refunds"]["data"][0]["id"] == refund.id

    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert err.value.http_status == 400 and err.value.code == "charge_already_refunded"
    fetched = stripe_client.v1.refunds.retrieve(refund.id)
    assert_stripe_shape(fetched)
    assert fetched.id == refund.id


def test_partial_refunds_and_over_refund(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pi = _paid(stripe_client, amount=5000)
    charge_id = str(pi.latest_charge)
    first = stripe_client.v1.refunds.create(params={"charge": charge_id, "amount": 1000})
    second = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1500})
    for refund in (first, second):
        assert_stripe_shape(refund)
    charge = _charge(stripe_client, charge_id)
    assert charge.amount_refunded == 2500 and not charge.refunded
    assert charge.refunds is not None and [r.id for r in charge.refunds.data] == [second.id, first.id]
    event = _event(receiver, "charge.refunded", charge_id, lambda e: e["data"]["object"]["amount_refunded"] == 2500)
    assert event["data"]["previous_attributes"] == {"amount_refunded": 1000}

    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.refunds.create(params={"charge": charge_id, "amount": 2501})
    assert err.value.http_status == 400 and err.value.param == "amount"
    assert "25.00 USD" in str(err.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.refunds.create(params={"charge": charge_id, "amount": 0})
    assert err.value.param == "amount"
    rest = stripe_client.v1.refunds.create(params={"charge": charge_id})
    assert rest.amount == 2500
    charge = _charge(stripe_client, charge_id)
    assert charge.refunded and charge.amount_refunded == 5000

    by_charge = stripe_client.v1.refunds.list(params={"charge": charge_id, "limit": 2})
    assert_stripe_shape(by_charge)
    assert [r.id for r in by_charge.data] == [rest.id, second.id] and by_charge.has_more
    by_pi = stripe_client.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in by_pi.data] == [rest.id, second.id, first.id]
    nested = stripe_client.raw_request("get", f"/v1/charges/{charge_id}/refunds")  # no SDK call for this list
    assert [r["id"] for r in stripe_client.deserialize(nested, api_mode="V1")["data"]] == [rest.id, second.id,
                                                                                           first.id]


def test_refund_update_sends_events(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pi = _paid(stripe_client)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    updated = stripe_client.v1.refunds.update(refund.id, params={"metadata": {"note": "late"}})
    assert_stripe_shape(updated)
    assert updated.metadata is not None and updated.metadata.to_dict() == {"note": "late"}
    for event_type in ("refund.updated", "charge.refund.updated"):
        event = _event(receiver, event_type, refund.id)
        assert event["data"]["previous_attributes"] == {"metadata": {}}
    charge = _charge(stripe_client, str(pi.latest_charge))
    assert charge.refunds is not None and charge.refunds.data[0].metadata is not None
    assert charge.refunds.data[0].metadata.to_dict() == {"note": "late"}


def test_refund_errors(stripe_client: stripe.StripeClient) -> None:
    unpaid = stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    held = stripe_client.v1.payment_intents.create(params={
        "amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "payment_method_types": ["card"], "capture_method": "manual"})
    for params, param in (({"payment_intent": unpaid.id}, "payment_intent"),
                          ({"charge": str(held.latest_charge)}, "charge"),
                          ({"charge": "ch_missing"}, "charge"),
                          ({"payment_intent": "pi_missing"}, "payment_intent"),
                          ({"amount": 100}, None),
                          ({"payment_intent": held.id, "reason": "bored"}, "reason")):
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.refunds.create(params=params)  # type: ignore[arg-type]
        assert err.value.http_status in (400, 404) and err.value.param == param, params


def test_refund_fail_card(stripe_client: stripe.StripeClient, sandbox: SandboxServer,
                          receiver: WebhookReceiver) -> None:
    pi = _paid(stripe_client, payment_method="pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.status == "succeeded"
    control(sandbox, "POST", "/_sandbox/clock/advance", seconds=1)
    failed = stripe_client.v1.refunds.retrieve(refund.id)
    assert_stripe_shape(failed)
    assert failed.status == "failed" and failed.failure_reason == "expired_or_canceled_card"
    charge = _charge(stripe_client, str(pi.latest_charge))
    assert charge.amount_refunded == 0 and not charge.refunded
    assert _event(receiver, "charge.refund.updated", refund.id, lambda e: e["data"]["object"]["status"] == "failed")
    _event(receiver, "refund.failed", refund.id)


def test_charges_retrieve_list_update(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    customer = stripe_client.v1.customers.create()
    first = _paid(stripe_client, customer=customer.id)
    second = _paid(stripe_client, customer=customer.id)
    listed = stripe_client.v1.charges.list(params={"customer": customer.id})
    assert_stripe_shape(listed)
    assert [c.id for c in listed.data] == [second.latest_charge, first.latest_charge]
    by_pi = stripe_client.v1.charges.list(params={"payment_intent": first.id})
    assert [c.id for c in by_pi.data] == [first.latest_charge]
    updated = stripe_client.v1.charges.update(str(first.latest_charge), params={
        "metadata": {"k": "v"}, "description": "Thanks"})
    assert_stripe_shape(updated)
    assert updated.metadata.to_dict() == {"k": "v"} and updated.description == "Thanks"
    event = _event(receiver, "charge.updated", updated.id)
    assert event["data"]["previous_attributes"] == {"metadata": {}, "description": None}
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.charges.retrieve("ch_missing")
    assert err.value.http_status == 404
