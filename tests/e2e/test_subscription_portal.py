"""From Tally's account page to the billing portal and back, in a real browser (Debian's Chromium through
Playwright), against the real Tally, its offline Stripe sandbox and PostgreSQL: "Manage billing" opens the
portal on Tally's configuration; the customer upgrades Basic → Pro (now, prorated credits), picks Basic again
(it waits for the period end), then cancels; the account page follows each change through the webhooks."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, pay, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)]


def _subscribed_user(tally: Any) -> str:
    """A user on the Basic monthly plan, bought through Tally's subscription Checkout."""
    user = f"web-{uuid.uuid4().hex[:10]}"
    with tally.client(user, f"{user}@example.com") as client:
        started = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic", "interval": "month"})
        assert started.status_code == 200, started.text
        paid = pay(tally, started.json()["session_id"], email=f"{user}@example.com")
        assert paid.status_code in (200, 303), paid.text
        wait_until(lambda: client.get("/v1/subscription").json()["plan"] == "basic", "subscription mirrored")
    return user


def _sign_in(page: Any, tally: Any, user: str) -> None:
    page.goto(f"{tally.url}/signin?next=/account")
    page.get_by_label("User id").fill(user)
    page.get_by_label("Email").fill(f"{user}@example.com")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{tally.url}/account")


def _account_shows(page: Any, text: str, timeout: float = 20) -> None:
    """Reload the account page until ``text`` shows (the change reaches Tally through its webhook)."""
    deadline = time.monotonic() + timeout
    while not page.get_by_text(text, exact=False).count():
        assert time.monotonic() < deadline, f"the account page never showed {text!r}"
        time.sleep(0.5)
        page.reload()


def _manage_billing(page: Any, tally: Any) -> None:
    page.get_by_role("region", name="Subscription").get_by_role("button", name="Manage billing").click()
    page.wait_for_url(re.compile(re.escape(tally.sandbox.url) + r"/p/session/bps_"))


def test_switch_plan_in_the_portal_then_cancel(page: Any, tally: Any, screenshots: Path) -> None:
    user = _subscribed_user(tally)
    _sign_in(page, tally, user)
    subscription = page.get_by_role("region", name="Subscription")
    assert subscription.get_by_test_id("subscription-plan").inner_text() == "Basic · monthly"
    assert page.get_by_test_id("balance").inner_text() == "1,000"

    _manage_billing(page, tally)
    plan = page.get_by_role("article", name="Basic")
    assert plan.get_by_text("$9.00 per month").is_visible()
    assert page.get_by_role("link", name=re.compile("Return to")).get_attribute("href") == f"{tally.url}/account"
    assert page.get_by_text("Tally Demo: manage your plan and billing").is_visible()  # Tally's configuration
    page.screenshot(path=str(screenshots / "portal-tally-home.png"), full_page=True)

    # Upgrade: applies now, invoiced at once, the prorated credits follow the paid invoice.
    plan.get_by_role("link", name="Switch plan").click()
    page.get_by_role("heading", name="Switch plan").wait_for()
    page.screenshot(path=str(screenshots / "portal-tally-switch.png"), full_page=True)
    page.get_by_label("Pro, $29.00 per month").check()
    page.get_by_role("button", name="Switch plan").click()
    page.wait_for_url(re.compile(r"notice=updated"))
    assert page.get_by_role("status").get_by_text("Your plan was updated.").is_visible()
    assert page.get_by_role("article", name="Pro").is_visible()

    # A lower plan waits for the end of the period.
    page.get_by_role("article", name="Pro").get_by_role("link", name="Switch plan").click()
    basic = page.get_by_label(re.compile(r"^Basic, \$9\.00 per month, from "))
    basic.check()
    page.get_by_role("button", name="Switch plan").click()
    page.wait_for_url(re.compile(r"notice=scheduled"))
    assert page.get_by_text(re.compile(r"Switches to Basic, \$9\.00 per month on ")).is_visible()
    page.screenshot(path=str(screenshots / "portal-tally-scheduled.png"), full_page=True)

    page.get_by_role("link", name=re.compile("Return to")).click()
    page.wait_for_url(f"{tally.url}/account")
    _account_shows(page, "Switches to Basic")
    assert subscription.get_by_test_id("subscription-plan").inner_text() == "Pro · monthly"
    assert int(page.get_by_test_id("balance").inner_text().replace(",", "")) > 1000  # the upgrade's credits

    # Cancel at the period end, with a reason; the waiting switch goes with it.
    _manage_billing(page, tally)
    page.get_by_role("article", name="Pro").get_by_role("link", name="Cancel plan").click()
    page.get_by_label("Why are you canceling? (optional)").select_option("too_expensive")
    page.get_by_role("button", name="Cancel plan").click()
    page.wait_for_url(re.compile(r"notice=canceled"))
    assert page.get_by_text(re.compile(r"^Cancels ")).is_visible()
    assert not page.get_by_text("Switches to").count()
    page.get_by_role("link", name=re.compile("Return to")).click()
    page.wait_for_url(f"{tally.url}/account")
    _account_shows(page, "Cancelled: you keep access and credits until the end of the period.")
    assert not page.get_by_text("Switches to Basic").count()
    assert page.get_by_test_id("subscription-status").get_by_text("Active").is_visible()
    page.screenshot(path=str(screenshots / "portal-tally-account-canceled.png"), full_page=True)
