"""The 3-D Secure and redirect-method page in a real browser: complete, fail, come back to the shop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

RETURN_URL = "https://shop.example/order/complete"


@pytest.fixture(scope="module")
def receiver(stripe_client: stripe.StripeClient) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": [
            "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action"]})
        assert_stripe_shape(endpoint)
        receiver.secret = endpoint.secret
        yield receiver
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)


def _requires_action(client: stripe.StripeClient, **params: Any) -> tuple[stripe.PaymentIntent, str]:
    pi = client.v1.payment_intents.create(params={"amount": 4200, "currency": "usd", "confirm": True,
                                                  "return_url": RETURN_URL, **params})
    assert_stripe_shape(pi)
    assert pi.status == "requires_action" and pi.next_action is not None
    assert pi.next_action.redirect_to_url is not None and pi.next_action.redirect_to_url.url
    return pi, pi.next_action.redirect_to_url.url


def _returned(page: Any, pi: stripe.PaymentIntent) -> dict[str, list[str]]:
    page.wait_for_url(RETURN_URL + "?**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["payment_intent"] == [pi.id] and query["payment_intent_client_secret"] == [pi.client_secret]
    return query


def _event(receiver: WebhookReceiver, event_type: str, pi_id: str) -> dict[str, Any]:
    event = receiver.wait_for(event_type, where=lambda e: e["data"]["object"]["id"] == pi_id)
    assert_stripe_shape(event["data"]["object"])
    return event


def test_complete_authentication(stripe_client: stripe.StripeClient, receiver: WebhookReceiver, page: Any) -> None:
    pi, url = _requires_action(stripe_client, payment_method="pm_card_authenticationRequired")
    _event(receiver, "payment_intent.requires_action", pi.id)
    page.goto(url)
    assert page.get_by_role("heading", name="3D Secure authentication").is_visible()
    assert page.get_by_text("42.00 USD").is_visible() and page.get_by_text("Visa •••• 3184").is_visible()
    page.get_by_role("button", name="Complete authentication").click()
    assert _returned(page, pi)["redirect_status"] == ["succeeded"]
    done = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert_stripe_shape(done)
    assert done.status == "succeeded" and done.amount_received == 4200
    assert _event(receiver, "payment_intent.succeeded", pi.id)["data"]["object"]["status"] == "succeeded"

    page.goto(url)  # the same page again: nothing left to authorize
    assert page.get_by_role("heading", name="Nothing to authorize").is_visible()


def test_fail_authentication(stripe_client: stripe.StripeClient, receiver: WebhookReceiver, page: Any) -> None:
    pi, url = _requires_action(stripe_client, payment_method="pm_card_threeDSecure2Required")
    page.goto(url)
    page.get_by_role("button", name="Fail authentication").click()
    assert _returned(page, pi)["redirect_status"] == ["failed"]
    failed = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert_stripe_shape(failed)
    assert failed.status == "requires_payment_method" and failed.last_payment_error is not None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    event = _event(receiver, "payment_intent.payment_failed", pi.id)
    assert event["data"]["object"]["last_payment_error"]["code"] == "payment_intent_authentication_failure"

    # The customer tries again with another card, on the same PaymentIntent.
    retried = stripe_client.v1.payment_intents.confirm(pi.id, params={
        "payment_method": "pm_card_authenticationRequired", "return_url": RETURN_URL})
    assert retried.next_action is not None and retried.next_action.redirect_to_url is not None
    page.goto(str(retried.next_action.redirect_to_url.url))
    page.get_by_role("button", name="Complete authentication").click()
    assert _returned(page, pi)["redirect_status"] == ["succeeded"]
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_grabpay_redirect(stripe_client: stripe.StripeClient, receiver: WebhookReceiver, page: Any) -> None:
    pi, url = _requires_action(stripe_client, currency="sgd", payment_method_types=["grabpay"],
                               payment_method_data={"type": "grabpay"})
    page.goto(url)
    assert page.get_by_role("heading", name="GrabPay test payment").is_visible()
    page.get_by_role("button", name="Authorize test payment").click()
    assert _returned(page, pi)["redirect_status"] == ["succeeded"]
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    _event(receiver, "payment_intent.succeeded", pi.id)
