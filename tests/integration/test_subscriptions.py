"""Subscriptions end to end on the sandbox's test clocks: Tally's API and webhooks, no mock of Stripe.

Lifecycle tests create the subscription through the SDK on a clock customer linked to a Tally user (see
``subscription_flow``); the Checkout test goes through Tally's ``POST /v1/subscriptions/checkout`` and the
sandbox's hosted page."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, new_user, pay, sql, wait_until
from tests.integration.subscription_flow import DAY, T0, add_months, clock_user

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

HOUR = 3600


def test_plans_are_listed(tally: Any) -> None:
    with tally.client(new_user()) as client:
        plans = client.get("/v1/plans").json()["data"]
    assert [p["id"] for p in plans] == ["basic", "pro"]
    basic = plans[0]
    assert {(p["interval"], p["amount"], p["credits"], p["lookup_key"]) for p in basic["prices"]} == {
        ("month", 900, 1000, "plan:basic:month"), ("year", 9000, 12000, "plan:basic:year")}


def test_no_subscription_answers_status_none(tally: Any) -> None:
    with tally.client(new_user()) as client:
        body = client.get("/v1/subscription").json()
        assert body["status"] == "none" and body["plan"] is None and body["entitlements"] == []
        assert client.post("/v1/subscription/cancel").status_code == 404
        bad = client.post("/v1/subscriptions/checkout", json={"plan_id": "nope", "interval": "month"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "plan_id"


def test_three_renewals_grant_credits_three_times(tally: Any) -> None:
    user = clock_user(tally)
    sub = user.subscribe("basic", "month")
    assert sub["status"] == "active"
    user.wait_balance(1000)
    state = user.wait_subscription("active", lambda s: s["status"] == "active")
    assert state["plan"] == "basic" and state["interval"] == "month"
    assert "email_support" in state["entitlements"]
    for months in (1, 2, 3):
        user.advance(add_months(T0, months) + 2 * HOUR)  # past the renewal and the draft's finalization
        user.wait_balance(1000 * (months + 1))
    user.idle()
    recorded = user.recorded_invoices()
    assert [r[1] for r in recorded] == ["subscription_create"] + ["subscription_cycle"] * 3
    assert all(r[2] == 900 and r[3] == 1000 for r in recorded)
    assert [i["status"] for i in user.invoices()] == ["paid"] * 4
    grants = sql(tally, "SELECT reference FROM ledger_transactions WHERE user_id = %s AND kind = 'subscription'",
                 user.user_id)
    assert sorted(g[0] for g in grants) == sorted(f"invoice:{r[0]}:grant" for r in recorded)
    assert user.subscription()["current_period_end"] == add_months(T0, 4)


def test_upgrade_mid_period_prorates_invoice_and_credits_once(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.wait_subscription("mirrored", lambda s: s["plan"] == "basic")
    t = T0 + 10 * DAY + 7 * HOUR
    user.advance(t)
    with user.client() as client:
        response = client.post("/v1/subscription/change", json={"plan_id": "pro", "interval": "month"})
        assert response.status_code == 200, response.text
        assert response.json()["plan"] == "pro"
    start, end = T0, add_months(T0, 1)
    remaining, whole = end - t, end - start
    # Stripe's arithmetic: each line rounded half up to the cent, then summed.
    expected_amount = ((2 * 2900 * remaining + whole) // (2 * whole)) - ((2 * 900 * remaining + whole) // (2 * whole))
    proration = user.invoices()[-1]
    assert proration["billing_reason"] == "subscription_update" and proration["status"] == "paid"
    assert proration["amount_paid"] == expected_amount
    extra = (4000 - 1000) * remaining // whole
    user.wait_balance(1000 + extra)
    user.idle()
    # The proration invoice's events again, through Tally's own replay: still granted once.
    with tally.admin_client() as admin:
        for (event_id,) in sql(tally, "SELECT id FROM webhook_events WHERE payload->'data'->'object'->>'id' = %s",
                               proration["id"]):
            assert admin.post(f"/v1/admin/events/{event_id}/replay").status_code == 200
    user.idle()
    assert user.balance() == 1000 + extra
    # The next renewal grants the Pro credits.
    user.advance(end + 2 * HOUR)
    user.wait_balance(1000 + extra + 4000)


def test_downgrade_applies_at_period_end_only(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("pro", "month")
    user.wait_balance(4000)
    user.wait_subscription("mirrored", lambda s: s["plan"] == "pro")
    user.advance(T0 + 5 * DAY)
    invoices_before = len(user.invoices())
    with user.client() as client:
        response = client.post("/v1/subscription/change", json={"plan_id": "basic", "interval": "month"})
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["plan"] == "pro" and body["pending_change"]["plan"] == "basic"
    assert body["pending_change"]["effective_at"] == add_months(T0, 1)
    assert "api_access" in body["entitlements"]
    user.idle()
    assert len(user.invoices()) == invoices_before  # nothing charged or credited now
    state = user.subscription()
    assert state["plan"] == "pro" and state["pending_change"]["plan"] == "basic"
    user.advance(add_months(T0, 1) + 2 * HOUR)
    user.wait_balance(4000 + 1000)
    state = user.wait_subscription("downgraded", lambda s: s["plan"] == "basic")
    assert state["pending_change"] is None and "api_access" not in state["entitlements"]
    assert user.invoices()[-1]["amount_paid"] == 900


def test_cancel_at_period_end_keeps_access_until_then(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.wait_subscription("mirrored", lambda s: s["status"] == "active")
    user.advance(T0 + 3 * DAY)
    with user.client() as client:
        body = client.post("/v1/subscription/cancel", json={}).json()
        assert body["cancel_at_period_end"] is True and body["status"] == "active" and body["entitlements"]
        resumed = client.post("/v1/subscription/resume").json()
        assert resumed["cancel_at_period_end"] is False
        body = client.post("/v1/subscription/cancel").json()
        assert body["cancel_at_period_end"] is True
    user.advance(add_months(T0, 1) - HOUR)
    user.idle()
    assert user.subscription()["entitlements"]
    user.advance(add_months(T0, 1) + 2 * HOUR)
    state = user.wait_subscription("canceled", lambda s: s["status"] == "canceled")
    assert state["entitlements"] == []
    assert user.balance() == 1000  # no renewal


def test_cancel_immediately(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_subscription("mirrored", lambda s: s["status"] == "active")
    with user.client() as client:
        body = client.post("/v1/subscription/cancel", json={"immediately": True}).json()
    assert body["status"] == "canceled" and body["entitlements"] == []


def test_trial_charges_nothing_until_it_ends_and_reminds(tally: Any) -> None:
    user = clock_user(tally)
    sub = user.subscribe("basic", "month", trial_period_days=7)
    assert sub["status"] == "trialing"
    state = user.wait_subscription("trialing", lambda s: s["status"] == "trialing")
    assert state["trial_end"] == T0 + 7 * DAY and state["entitlements"]
    user.advance(T0 + 5 * DAY)
    wait_until(lambda: user.outbox("trial_ending"), "trial reminder in the outbox")
    reminder = user.outbox("trial_ending")[0]
    assert "trial ends" in reminder["subject"] and "/billing/portal/" in reminder["body"]
    user.idle()
    assert user.balance() == 0 and all(i["amount_paid"] == 0 for i in user.invoices())
    user.advance(T0 + 7 * DAY + 2 * HOUR)
    user.wait_balance(1000)
    assert user.subscription()["status"] == "active"
    assert user.invoices()[-1]["amount_paid"] == 900
    assert len(user.outbox("trial_ending")) == 1


def test_replayed_and_shuffled_events_give_the_same_end_state(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.advance(add_months(T0, 1) + 2 * HOUR)
    user.wait_balance(2000)
    user.idle()
    before = (user.balance(), user.subscription(), user.recorded_invoices())
    events = [r[0] for r in sql(tally, "SELECT id FROM webhook_events WHERE payload::text LIKE %s",
                                f"%{user.customer_id}%")]
    assert len(events) >= 8
    random.Random(6).shuffle(events)
    with tally.admin_client() as admin:
        for event_id in events:  # duplicates from Stripe are deduplicated by the inbox ...
            httpx.post(f"{tally.sandbox.url}/_sandbox/events/{event_id}/resend")
            assert admin.post(f"/v1/admin/events/{event_id}/replay").status_code == 200  # ... replays are not
    user.idle()
    assert (user.balance(), user.subscription(), user.recorded_invoices()) == before


def test_monthly_plan_bought_through_checkout(tally: Any) -> None:
    user_id = new_user()
    with tally.client(user_id, f"{user_id}@example.com") as client:
        response = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic", "interval": "month"})
        assert response.status_code == 200, response.text
        started = response.json()
        assert started["checkout_url"].startswith(tally.sandbox.url)
        paid = pay(tally, started["session_id"])
        assert paid.status_code in (200, 303), paid.text
        wait_until(lambda: client.get("/v1/credits").json()["balance"] == 1000, "subscription credits")
        state = client.get("/v1/subscription").json()
        assert state["status"] == "active" and state["plan"] == "basic"
        again = client.post("/v1/subscriptions/checkout", json={"plan_id": "pro", "interval": "month"})
        assert again.status_code == 409


def test_portal_link_returns_to_the_account_page(tally: Any) -> None:
    user_id = new_user()
    with tally.client(user_id) as client:
        response = client.post("/v1/portal")
        assert response.status_code == 200, response.text
        url = response.json()["url"]
    assert url.startswith(tally.sandbox.url)
    page = httpx.get(url, follow_redirects=True)
    assert page.status_code == 200
    assert f"{tally.url}/account" in page.text
