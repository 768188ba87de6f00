"""Subscriptions end to end on the sandbox's test clocks: Tally's API and webhooks, no mock of Stripe.

Lifecycle tests create the subscription through the SDK on a clock customer linked to a Tally user (see
``subscription_flow``); the Checkout test goes through Tally's ``POST /v1/subscriptions/checkout`` and the
sandbox's hosted page."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, new_user, sql, wait_until
from tests.integration.subscription_flow import DAY, T0, add_months, clock_user, plan_prices

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


def test_monthly_plan_bought_through_checkout_then_three_renewals(tally: Any) -> None:
    user = clock_user(tally, card=None)  # the card comes with the hosted Checkout page
    user.checkout("basic", "month")
    user.wait_balance(1000)
    state = user.wait_subscription("active", lambda s: s["status"] == "active")
    assert state["plan"] == "basic" and state["interval"] == "month" and "email_support" in state["entitlements"]
    assert state["current_period_end"] == add_months(T0, 1)  # bought on the clock's time
    with user.client() as client:
        again = client.post("/v1/subscriptions/checkout", json={"plan_id": "pro", "interval": "month"})
        assert again.status_code == 409
    for months in (1, 2, 3):
        user.advance(add_months(T0, months) + 2 * HOUR)  # past the renewal and the draft's finalization
        user.wait_balance(1000 * (months + 1))
    user.idle()
    recorded = user.recorded_invoices()
    assert [r[1] for r in recorded] == ["subscription_create"] + ["subscription_cycle"] * 3
    assert all(r[2] == 900 and r[3] == 1000 for r in recorded)
    invoices = user.invoices()
    assert [(i["billing_reason"], i["status"], i["amount_paid"]) for i in invoices] == \
        [("subscription_create", "paid", 900)] + [("subscription_cycle", "paid", 900)] * 3
    grants = sql(tally, "SELECT reference FROM ledger_transactions WHERE user_id = %s AND kind = 'subscription'",
                 user.user_id)
    assert sorted(g[0] for g in grants) == sorted(f"invoice:{i['id']}:grant" for i in invoices)
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


def _change(user: Any, plan: str, interval: str = "month", status: int = 200) -> dict[str, Any]:
    with user.client() as client:
        response = client.post("/v1/subscription/change", json={"plan_id": plan, "interval": interval})
    assert response.status_code == status, response.text
    return dict(response.json())


def _schedule(user: Any) -> dict[str, Any] | None:
    schedule_id = user.stripe_subscription().get("schedule")
    return user.stripe.v1.subscription_schedules.retrieve(schedule_id).to_dict() if schedule_id else None


def test_downgrade_applies_at_period_end_only(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("pro", "month")
    user.wait_balance(4000)
    user.wait_subscription("mirrored", lambda s: s["plan"] == "pro")
    user.advance(T0 + 5 * DAY)
    invoices_before = len(user.invoices())
    body = _change(user, "basic")
    assert body["plan"] == "pro" and body["pending_change"]["plan"] == "basic"
    assert body["pending_change"]["effective_at"] == add_months(T0, 1)
    assert "api_access" in body["entitlements"]
    # Stripe keeps the paid-for price until the period ends; the change waits in a subscription schedule.
    sub = user.stripe_subscription()
    assert sub["items"]["data"][0]["price"]["lookup_key"] == "plan:pro:month"
    schedule = _schedule(user)
    assert schedule is not None and schedule["status"] == "active" and schedule["end_behavior"] == "release"
    assert [p["start_date"] for p in schedule["phases"]] == [T0, add_months(T0, 1)]
    assert schedule["phases"][1]["items"][0]["price"] == plan_prices(tally)["plan:basic:month"]
    user.idle()
    assert len(user.invoices()) == invoices_before  # nothing charged or credited now
    state = user.subscription()
    assert state["plan"] == "pro" and state["pending_change"]["plan"] == "basic"
    assert _change(user, "basic", status=409)["error"]["param"] == "plan_id"  # already scheduled
    user.advance(add_months(T0, 1) - HOUR)
    user.idle()
    assert user.subscription()["plan"] == "pro" and user.balance() == 4000
    user.advance(add_months(T0, 1) + 2 * HOUR)
    user.wait_balance(4000 + 1000)
    state = user.wait_subscription("downgraded", lambda s: s["plan"] == "basic")
    assert state["pending_change"] is None and "api_access" not in state["entitlements"]
    assert user.invoices()[-1]["amount_paid"] == 900 and user.invoices()[-1]["billing_reason"] == "subscription_cycle"
    user.advance(add_months(T0, 2) + 2 * HOUR)  # the schedule's last phase ends: released, basic goes on
    user.wait_balance(4000 + 2000)
    assert user.stripe_subscription()["schedule"] is None
    assert user.subscription()["plan"] == "basic"


def test_a_waiting_downgrade_is_called_off_or_replaced_by_an_upgrade(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("pro", "month")
    user.wait_subscription("mirrored", lambda s: s["plan"] == "pro")
    user.advance(T0 + 3 * DAY)
    _change(user, "basic")
    first = _schedule(user)
    assert first is not None
    undone = _change(user, "pro")  # asking for the current plan calls the downgrade off
    assert undone["plan"] == "pro" and undone["pending_change"] is None
    assert user.stripe.v1.subscription_schedules.retrieve(first["id"]).status == "released"
    assert user.stripe_subscription()["schedule"] is None

    _change(user, "basic")
    assert _schedule(user) is not None
    upgraded = _change(user, "pro", "year")  # an upgrade instead: now, and the schedule goes
    assert upgraded["plan"] == "pro" and upgraded["interval"] == "year" and upgraded["pending_change"] is None
    assert user.stripe_subscription()["schedule"] is None
    user.wait_balance(4000 + 48000)  # the yearly cycle's invoice grants the year's credits


def test_yearly_to_monthly_waits_for_the_end_of_the_year(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("pro", "year")
    user.wait_balance(48000)
    user.wait_subscription("mirrored", lambda s: s["interval"] == "year")
    user.advance(T0 + 100 * DAY)
    body = _change(user, "pro", "month")
    year_end = add_months(T0, 12)
    assert body["interval"] == "year" and body["pending_change"] == {
        "plan": "pro", "interval": "month", "effective_at": year_end}
    user.advance(year_end - DAY)
    user.idle()
    assert user.balance() == 48000
    user.advance(year_end + 2 * HOUR)
    user.wait_balance(48000 + 4000)
    state = user.wait_subscription("monthly", lambda s: s["interval"] == "month")
    assert state["plan"] == "pro" and state["current_period_end"] == add_months(year_end, 1)
    assert user.invoices()[-1]["amount_paid"] == 2900


def test_portal_upgrade_grants_prorated_credits_once_and_portal_downgrade_waits(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.wait_subscription("mirrored", lambda s: s["plan"] == "basic")
    t = T0 + 12 * DAY + 5 * HOUR
    user.advance(t)
    switched = user.portal_switch("pro")
    assert switched.status_code == 303 and switched.headers["location"].endswith("notice=updated")
    start, end = T0, add_months(T0, 1)
    extra = (4000 - 1000) * (end - t) // (end - start)  # the same rule as an upgrade through Tally's API
    user.wait_balance(1000 + extra)
    state = user.wait_subscription("pro", lambda s: s["plan"] == "pro")
    assert "api_access" in state["entitlements"]
    proration = user.invoices()[-1]
    assert proration["billing_reason"] == "subscription_update" and proration["status"] == "paid"
    user.idle()
    changes = sql(tally, "SELECT kind, from_plan_id, to_plan_id, credits, proration_date, stripe_invoice_id "
                         "FROM subscription_changes WHERE user_id = %s", user.user_id)
    assert changes == [("upgrade", "basic", "pro", extra, t, proration["id"])]
    with tally.admin_client() as admin:  # the invoice's events again: still granted once
        for (event_id,) in sql(tally, "SELECT id FROM webhook_events WHERE payload->'data'->'object'->>'id' = %s",
                               proration["id"]):
            assert admin.post(f"/v1/admin/events/{event_id}/replay").status_code == 200
    user.idle()
    assert user.balance() == 1000 + extra

    scheduled = user.portal_switch("basic")  # a lower amount: the portal schedules it for the period end
    assert scheduled.status_code == 303 and scheduled.headers["location"].endswith("notice=scheduled")
    state = user.wait_subscription("pending downgrade", lambda s: s["pending_change"] is not None)
    assert state["plan"] == "pro" and state["pending_change"] == {
        "plan": "basic", "interval": "month", "effective_at": end}
    user.idle()
    assert user.balance() == 1000 + extra and len(user.invoices()) == 2
    user.advance(end + 2 * HOUR)
    user.wait_balance(1000 + extra + 1000)
    state = user.wait_subscription("downgraded", lambda s: s["plan"] == "basic")
    assert state["pending_change"] is None and "api_access" not in state["entitlements"]


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


def _end_state(user: Any) -> tuple[Any, ...]:
    changes = sql(user.tally, "SELECT kind, to_plan_id, credits, stripe_invoice_id FROM subscription_changes "
                              "WHERE user_id = %s ORDER BY proration_date, kind", user.user_id)
    grants = sql(user.tally, "SELECT reference FROM ledger_transactions WHERE user_id = %s ORDER BY reference",
                 user.user_id)
    return user.balance(), user.subscription(), user.recorded_invoices(), changes, grants


def _replay_shuffled(user: Any, seed: int) -> int:
    """Every event about the user's customer, resent by the sandbox (a duplicate) and replayed by Tally, in a
    shuffled order; returns how many."""
    tally = user.tally
    events = [r[0] for r in sql(tally, "SELECT id FROM webhook_events WHERE payload::text LIKE %s",
                                f"%{user.customer_id}%")]
    random.Random(seed).shuffle(events)
    with tally.admin_client() as admin:
        for event_id in events:  # duplicates from Stripe are deduplicated by the inbox ...
            httpx.post(f"{tally.sandbox.url}/_sandbox/events/{event_id}/resend")
            assert admin.post(f"/v1/admin/events/{event_id}/replay").status_code == 200  # ... replays are not
    user.idle()
    return len(events)


def test_replayed_and_shuffled_events_give_the_same_end_state(tally: Any) -> None:
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.advance(add_months(T0, 1) + 2 * HOUR)
    user.wait_balance(2000)
    user.advance(add_months(T0, 1) + 9 * DAY)
    assert user.portal_switch("pro").status_code == 303  # an upgrade: prorated invoice and credits
    user.wait_subscription("pro", lambda s: s["plan"] == "pro")
    _change(user, "basic")  # then a downgrade waiting in a schedule
    user.idle()
    during = _end_state(user)
    assert during[1]["pending_change"]["plan"] == "basic" and len(during[3]) == 2
    assert _replay_shuffled(user, 6) >= 20
    assert _end_state(user) == during
    user.advance(add_months(T0, 2) + 2 * HOUR)  # the downgrade applies
    user.wait_subscription("basic", lambda s: s["plan"] == "basic")
    user.idle()
    after = _end_state(user)
    _replay_shuffled(user, 7)
    assert _end_state(user) == after


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
