"""Dunning on test clocks: a renewal that fails sends reminders on the configured days (0, 3, 5, 7 by default)
with a portal link, stops as soon as the invoice is paid, and access pauses when Stripe gives up (canceled, or
unpaid until the card is updated in the portal); replayed, shuffled events change nothing."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, sql, wait_until
from tests.integration.subscription_flow import DAY, T0, add_months, clock_user

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

HOUR = 3600
RENEWAL = add_months(T0, 1)
FAILING_CARD = "pm_card_chargeCustomerFail"


def _steps(user: Any) -> list[int]:
    rows = sql(user.tally, "SELECT step FROM dunning_notices WHERE user_id = %s AND status = 'sent' ORDER BY step",
               user.user_id)
    return [r[0] for r in rows]


def _wait_emails(user: Any, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(user.outbox("dunning")) >= count, f"{count} dunning emails (have {_steps(user)})", 25)
    return user.outbox("dunning")


def test_failing_card_dunning_schedule_then_access_paused(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.use_card(FAILING_CARD)
    user.advance(RENEWAL + 2 * HOUR)  # renewal charged at finalization (+1 h): declined
    state = user.wait_subscription("past_due", lambda s: s["status"] == "past_due")
    assert state["entitlements"], "access stays on while Stripe retries"
    first = _wait_emails(user, 1)[0]
    assert "update your card" in first["subject"] and "/billing/portal/" in first["body"]
    # The link in the email opens a portal session (or says the portal is missing, never an error page).
    link = first["body"].split("/billing/portal/")[1].split()[0]
    opened = httpx.get(f"{tally.url}/billing/portal/{link}", follow_redirects=False)
    assert opened.status_code in (303, 503), opened.text
    assert httpx.get(f"{tally.url}/billing/portal/not-a-token").status_code == 404

    user.advance(RENEWAL + 3 * DAY + 2 * HOUR)
    _wait_emails(user, 2)
    user.advance(RENEWAL + 4 * DAY + 2 * HOUR)
    user.idle()
    assert _steps(user) == [0, 3]  # nothing early
    user.advance(RENEWAL + 5 * DAY + 2 * HOUR)
    _wait_emails(user, 3)
    user.advance(RENEWAL + 7 * DAY + 2 * HOUR)  # the last retry fails: Stripe cancels
    state = user.wait_subscription("canceled", lambda s: s["status"] == "canceled")
    assert state["entitlements"] == []
    emails = _wait_emails(user, 4)
    assert _steps(user) == [0, 3, 5, 7]
    assert "paused" in emails[0]["subject"]  # newest first: the day-7 email says access is paused
    assert user.balance() == 1000  # the failed renewal granted nothing


def test_paying_the_invoice_stops_dunning_and_restores_access(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.use_card(FAILING_CARD)
    user.advance(RENEWAL + 2 * HOUR)
    user.wait_subscription("past_due", lambda s: s["status"] == "past_due")
    _wait_emails(user, 1)
    # The customer fixes the card (what the portal does) and the open invoice is paid.
    good = user.use_card("pm_card_visa")
    failed = user.invoices()[-1]
    assert failed["status"] == "open"
    user.stripe.v1.invoices.pay(failed["id"], params={"payment_method": good})
    user.wait_balance(2000)
    state = user.wait_subscription("active again", lambda s: s["status"] == "active")
    assert state["entitlements"]
    user.advance(RENEWAL + 6 * DAY)
    user.idle()
    assert _steps(user) == [0]
    assert len(user.outbox("dunning")) == 1
    skipped = sql(tally, "SELECT count(*) FROM dunning_notices WHERE user_id = %s AND status = 'skipped'",
                  user.user_id)[0][0]
    assert skipped == 3


def test_outbox_page_lists_caught_emails(tally: Any) -> None:
    page = httpx.get(f"{tally.url}/outbox")
    assert page.status_code == 200 and "Outbox" in page.text
    assert httpx.get(f"{tally.url}/v1/admin/outbox").status_code == 401


def test_unpaid_pauses_access_then_the_card_updated_in_the_portal_restores_it(tally: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe's "mark the subscription unpaid" final action (the sandbox's setting): access pauses when the
    retries are spent; the customer follows the email's link to the portal page, saves a working card there,
    the open invoice is paid at once and access comes back, with the renewal's credits."""
    monkeypatch.setenv("STRIPE_SANDBOX_DUNNING_FINAL_STATUS", "unpaid")
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.use_card(FAILING_CARD)
    for day in (0, 3, 5):
        user.advance(RENEWAL + day * DAY + 2 * HOUR)
        _wait_emails(user, 1 + (day > 0) + (day > 3))
    assert user.subscription()["status"] == "past_due" and user.subscription()["entitlements"]
    user.advance(RENEWAL + 7 * DAY + 2 * HOUR)  # the last retry fails: Stripe marks it unpaid
    state = user.wait_subscription("unpaid", lambda s: s["status"] == "unpaid")
    assert state["entitlements"] == []
    emails = _wait_emails(user, 4)
    assert _steps(user) == [0, 3, 5, 7] and "paused" in emails[0]["subject"]
    failed = user.invoices()[-1]
    assert failed["status"] == "open" and failed["attempt_count"] == 4

    link = emails[0]["body"].split("/billing/portal/")[1].split()[0]
    opened = httpx.get(f"{tally.url}/billing/portal/{link}", follow_redirects=False)
    assert opened.status_code == 303, opened.text
    portal = opened.headers["location"]
    assert portal.startswith(tally.sandbox.url)
    home = httpx.get(portal)
    assert home.status_code == 200 and "Unpaid" in home.text
    saved = httpx.post(f"{portal}/payment-method", data={
        "cardNumber": "4242 4242 4242 4242", "cardExpiry": "12 / 34", "cardCvc": "123", "billingName": "Ada"})
    assert saved.status_code == 303, saved.text
    assert user.stripe.v1.invoices.retrieve(failed["id"]).status == "paid"
    state = user.wait_subscription("active again", lambda s: s["status"] == "active")
    assert state["entitlements"]
    user.wait_balance(2000)  # the renewal's credits, once paid
    user.idle()
    assert len(user.outbox("dunning")) == 4  # nothing more once paid
    user.advance(add_months(T0, 2) + 2 * HOUR)  # and the new card pays the next renewal
    user.wait_balance(3000)


def test_dunning_replayed_and_shuffled_gives_the_same_end_state(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.use_card(FAILING_CARD)
    user.advance(RENEWAL + 3 * DAY + 2 * HOUR)
    _wait_emails(user, 2)
    user.idle()

    def end_state() -> tuple[Any, ...]:
        notices = sql(tally, "SELECT step, status FROM dunning_notices WHERE user_id = %s ORDER BY step",
                      user.user_id)
        return (user.balance(), user.subscription(), user.recorded_invoices(), notices,
                sorted(e["subject"] for e in user.outbox("dunning")))

    during = end_state()
    assert during[1]["status"] == "past_due" and [n[1] for n in during[3]] == ["sent", "sent", "scheduled",
                                                                                "scheduled"]
    events = [r[0] for r in sql(tally, "SELECT id FROM webhook_events WHERE payload::text LIKE %s",
                                f"%{user.customer_id}%")]
    random.Random(11).shuffle(events)
    with tally.admin_client() as admin:
        for event_id in events:
            httpx.post(f"{tally.sandbox.url}/_sandbox/events/{event_id}/resend")
            assert admin.post(f"/v1/admin/events/{event_id}/replay").status_code == 200
    user.idle()
    assert end_state() == during
    user.advance(RENEWAL + 8 * DAY)  # Stripe gives up
    user.wait_subscription("canceled", lambda s: s["status"] == "canceled")
    _wait_emails(user, 4)
    user.idle()
    after = end_state()
    random.Random(12).shuffle(events := [r[0] for r in sql(
        tally, "SELECT id FROM webhook_events WHERE payload::text LIKE %s", f"%{user.customer_id}%")])
    with tally.admin_client() as admin:
        for event_id in events:
            assert admin.post(f"/v1/admin/events/{event_id}/replay").status_code == 200
    user.idle()
    assert end_state() == after
