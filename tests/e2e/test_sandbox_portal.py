"""The hosted customer portal in a real browser: switch plan, cancel with a reason, return to the shop."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.sandbox.billing_support import setup
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

RETURN = "https://shop.example/account"


def test_switch_plan_then_cancel_with_a_reason_and_return(page: Any, stripe_client: stripe.StripeClient,
                                                           screenshots: Path) -> None:
    s = setup(stripe_client)
    product = stripe_client.v1.products.create(params={"name": "Tally"})
    assert_stripe_shape(product)
    prices = {name: stripe_client.v1.prices.create(params={
        "product": product.id, "unit_amount": amount, "currency": "usd", "recurring": {"interval": "month"}})
        for name, amount in (("basic", 999), ("pro", 2999))}
    sub = stripe_client.v1.subscriptions.create(params={"customer": s.customer.id,
                                                        "items": [{"price": prices["basic"].id}]})
    for obj in (sub, *prices.values()):
        assert_stripe_shape(obj)
    config = stripe_client.v1.billing_portal.configurations.create(params={"features": {
        "invoice_history": {"enabled": True}, "payment_method_update": {"enabled": True},
        "subscription_update": {"enabled": True, "default_allowed_updates": ["price"],
                                "products": [{"product": product.id, "prices": [p.id for p in prices.values()]}]},
        "subscription_cancel": {"enabled": True, "cancellation_reason": {
            "enabled": True, "options": ["too_expensive", "unused", "other"]}}}})
    assert_stripe_shape(config)
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={
            "url": receiver.url, "enabled_events": ["customer.subscription.updated"]})
        assert_stripe_shape(endpoint)
        receiver.secret = endpoint.secret
        try:
            session = stripe_client.v1.billing_portal.sessions.create(params={
                "customer": s.customer.id, "return_url": RETURN, "configuration": config.id})
            assert_stripe_shape(session)

            page.goto(session.url)
            assert page.get_by_role("heading", name="Billing").is_visible()
            assert page.get_by_text("$9.99 per month").is_visible()
            page.screenshot(path=str(screenshots / "portal-home.png"), full_page=True)

            page.get_by_role("link", name="Switch plan").click()
            page.get_by_label("Tally, $29.99 per month").check()
            page.screenshot(path=str(screenshots / "portal-switch.png"), full_page=True)
            page.get_by_role("button", name="Switch plan").click()
            page.wait_for_url(re.compile(r"notice=updated"))
            assert page.get_by_role("status").filter(has_text="Your plan was updated.").is_visible()
            assert page.get_by_text("$29.99 per month").is_visible()

            page.get_by_role("link", name="Cancel plan").click()
            page.get_by_label("Why are you canceling? (optional)").select_option("too_expensive")
            page.get_by_label("Anything else you want to tell us? (optional)").fill("Cheaper elsewhere")
            page.screenshot(path=str(screenshots / "portal-cancel.png"), full_page=True)
            page.get_by_role("button", name="Cancel plan").click()
            page.wait_for_url(re.compile(r"notice=canceled"))
            assert page.get_by_text(re.compile(r"^Cancels ")).is_visible()
            page.screenshot(path=str(screenshots / "portal-canceled.png"), full_page=True)

            page.get_by_role("link", name="Return to Sandbox business").click()
            page.wait_for_url(RETURN)

            done = stripe_client.v1.subscriptions.retrieve(sub.id)
            assert_stripe_shape(done)
            assert done.items.data[0].price.id == prices["pro"].id and done.cancel_at_period_end
            assert done.cancellation_details.feedback == "too_expensive"
            assert done.cancellation_details.comment == "Cheaper elsewhere"
            event = receiver.wait_for("customer.subscription.updated",
                                      where=lambda e: e["data"]["object"]["id"] == sub.id
                                      and e["data"]["object"]["cancel_at_period_end"])
            assert_stripe_shape(event["data"]["object"])
            assert event["data"]["object"]["cancellation_details"]["feedback"] == "too_expensive"
        finally:
            stripe_client.v1.webhook_endpoints.delete(endpoint.id)
