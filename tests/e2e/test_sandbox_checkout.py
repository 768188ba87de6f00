"""The hosted Checkout page in a real browser: pay, decline, go back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SUCCESS = "https://shop.example/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://shop.example/cancel"


@pytest.fixture(scope="module")
def receiver(stripe_client: stripe.StripeClient) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={
            "url": receiver.url,
            "enabled_events": ["checkout.session.completed", "payment_intent.succeeded"]})
        assert_stripe_shape(endpoint)
        receiver.secret = endpoint.secret
        yield receiver
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)


def _session(client: stripe.StripeClient, **params: Any) -> stripe.checkout.Session:
    product = client.v1.products.create(params={"name": "100 credits"})
    assert_stripe_shape(product)
    price = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 999})
    assert_stripe_shape(price)
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS, "cancel_url": CANCEL, **params})
    assert_stripe_shape(session)
    return session


def _fill(page: Any, number: str, *, email: str | None = "buyer@example.com",
          name: str = "Ada Lovelace") -> None:
    if email is not None:
        page.get_by_label("Email").fill(email)
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill(name)


def test_pay_with_4242_redirects_to_success_url(page: Any, stripe_client: stripe.StripeClient,
                                                receiver: WebhookReceiver, screenshots: Path) -> None:
    session = _session(stripe_client, metadata={"order": "e2e-1"})
    page.goto(session.url)
    assert page.get_by_text("Test mode", exact=False).first.is_visible()
    assert page.get_by_role("button", name="Pay $9.99").is_visible()
    _fill(page, "4242 4242 4242 4242")
    page.screenshot(path=str(screenshots / "checkout-filled.png"), full_page=True)
    page.get_by_role("button", name="Pay $9.99").click()
    page.wait_for_url(re.compile(r"^https://shop\.example/success"))
    assert page.url == f"https://shop.example/success?session_id={session.id}"

    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status, done.url) == ("complete", "paid", None)
    assert done.customer is not None and done.customer_details.email == "buyer@example.com"
    assert done.customer_details.name == "Ada Lovelace"
    pi = done.payment_intent
    assert pi.status == "succeeded" and pi.amount == 999 and pi.customer == done.customer
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert_stripe_shape(charge)
    assert charge.paid and charge.status == "succeeded" and charge.amount == 999
    customer = stripe_client.v1.customers.retrieve(done.customer)
    assert_stripe_shape(customer)
    assert customer.email == "buyer@example.com"

    event = receiver.wait_for("checkout.session.completed",
                              where=lambda e: e["data"]["object"]["id"] == session.id)
    assert_stripe_shape(event["data"]["object"])
    assert event["data"]["object"]["payment_status"] == "paid"
    assert event["data"]["object"]["metadata"] == {"order": "e2e-1"}

    # The session's page now says it is complete instead of showing the form.
    page.goto(session.url)
    assert page.get_by_role("heading", name=re.compile("Thanks for your payment")).is_visible()
    assert page.locator("form").count() == 0


def test_insufficient_funds_shows_the_decline_and_keeps_the_session_open(
        page: Any, stripe_client: stripe.StripeClient, screenshots: Path) -> None:
    session = _session(stripe_client, customer_email="locked@example.com")
    page.goto(session.url)
    assert page.get_by_label("Email").input_value() == "locked@example.com"
    _fill(page, "4000 0000 0000 9995", email=None)
    page.get_by_role("button", name="Pay $9.99").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Your card has insufficient funds." in alert.inner_text()
    page.screenshot(path=str(screenshots / "checkout-declined.png"), full_page=True)
    assert page.url.endswith(f"/c/pay/{session.id}")

    still = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(still)
    assert (still.status, still.payment_status) == ("open", "unpaid")
    assert still.payment_intent.status == "requires_payment_method"
    assert still.payment_intent.last_payment_error.decline_code == "insufficient_funds"

    # The same PaymentIntent is confirmed again with a good card.
    _fill(page, "4242424242424242", email=None)
    page.get_by_role("button", name="Pay $9.99").click()
    page.wait_for_url(re.compile(r"^https://shop\.example/success"))
    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert_stripe_shape(paid)
    assert paid.status == "complete" and paid.payment_intent == still.payment_intent.id


def test_back_goes_to_cancel_url(page: Any, stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    page.goto(session.url)
    page.get_by_role("link", name=re.compile("Back")).click()
    page.wait_for_url(CANCEL)
    assert page.url == CANCEL
    assert_stripe_shape(stripe_client.v1.checkout.sessions.retrieve(session.id))


def test_validation_errors_are_shown_next_to_the_fields(page: Any,
                                                        stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    page.goto(session.url)
    page.get_by_label("Email").fill("buyer@example.com")
    page.get_by_label("Expiry (MM / YY)").fill("13 / 99")
    page.get_by_role("button", name="Pay $9.99").click()
    page.locator("#cardNumber-error").wait_for()
    assert page.locator("#cardNumber-error").inner_text() == "Your card number is incomplete."
    assert "expiration month" in page.locator("#cardExpiry-error").inner_text()
    assert page.get_by_label("Card number").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Email").input_value() == "buyer@example.com"
