"""A subscription's credits through the sandbox on test clocks: a monthly allowance with
``credits_expire = "period_end"`` lapses at renewal (up to ``rollover_cap`` carries over), and a refunded
subscription invoice takes back its share of the credits it granted, once per refund."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, sql
from tests.integration.subscription_flow import ClockUser, add_months, clock_user
from tests.integration.test_ledger_check import check
from tests.tally_harness import TallyServer

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)
HOUR = 3600

PLANS = """
[[plans]]
id = "basic"
name = "Basic"
rank = 1
currency = "usd"
month = { amount = 900, credits = 1000 }
credits_expire = "period_end"
rollover_cap = 300

[[plans]]
id = "pro"
name = "Pro"
rank = 2
currency = "usd"
month = { amount = 2900, credits = 4000 }
credits_expire = "period_end"
"""


@pytest.fixture(scope="module")
def tally(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TallyServer]:
    plans = tmp_path_factory.mktemp("plans") / "plans.toml"
    plans.write_text(PLANS)
    with TallyServer(module_database_url, TALLY_PLANS=str(plans)) as server:
        yield server


def now_user(tally: Any) -> ClockUser:
    """A customer on a test clock that starts at the wall clock's time: a period's credits stay unexpired until
    the clock reaches its end."""
    return clock_user(tally, frozen_time=int(time.time()) // 60 * 60)


def spend(user: ClockUser, amount: int, key: str) -> None:
    with user.client() as client:
        response = client.post("/v1/credits/spend", json={"amount": amount, "reason": "use", "idempotency_key": key})
        assert response.status_code == 200, response.text


def kinds(tally: Any, user: ClockUser) -> list[tuple[str, int]]:
    return sql(tally, """SELECT t.kind, sum(e.amount)::int FROM ledger_transactions t
                         JOIN ledger_entries e ON e.transaction_id = t.id
                         JOIN wallet_balances w ON w.account_id = e.account_id
                         WHERE t.user_id = %s GROUP BY t.id, t.kind ORDER BY t.id""", user.user_id)


def test_monthly_allowance_lapses_at_renewal_and_at_most_the_cap_rolls_over(tally: Any) -> None:
    user = now_user(tally)
    start = user.now
    user.subscribe("basic")
    user.wait_balance(1000)
    with user.client() as client:
        (grant,) = client.get("/v1/credits").json()["grants"]
    assert (grant["source"], grant["remaining"]) == ("subscription", 1000)
    assert grant["expires_at"] is not None
    spend(user, 500, "first-month")

    user.advance(add_months(start, 1) + 2 * HOUR)
    user.wait_balance(300 + 1000)  # 300 of the 500 left carried over, 200 lapsed, the new month's 1000
    user.idle()
    assert kinds(tally, user) == [("subscription", 1000), ("spend", -500), ("rollover", 0), ("expiry", -200),
                                  ("subscription", 1000)]
    with user.client() as client:
        grants = client.get("/v1/credits").json()["grants"]
    assert sorted((g["source"], g["remaining"]) for g in grants) == [("rollover", 300), ("subscription", 1000)]

    # A month with nothing spent: of 1 300 unused, the cap's 300 carry over again.
    user.advance(add_months(start, 2) + 2 * HOUR)
    user.wait_balance(300 + 1000)
    user.idle()
    # The carry-over draws from the older grant first (last month's 300), so only the rest of this month's lapses.
    assert kinds(tally, user)[-3:] == [("rollover", 0), ("expiry", -1000), ("subscription", 1000)]
    assert sum(a for k, a in kinds(tally, user) if k == "expiry") == -200 - 1000
    report = check(tally.database_url)
    assert report.ok, report.as_json()


def test_without_rollover_the_whole_allowance_lapses(tally: Any) -> None:
    user = now_user(tally)
    user.subscribe("pro")
    user.wait_balance(4000)
    spend(user, 1000, "some")
    user.advance(add_months(user.now, 1) + 2 * HOUR)
    user.wait_balance(4000)
    user.idle()
    assert kinds(tally, user)[-2:] == [("expiry", -3000), ("subscription", 4000)]


def test_refunds_of_a_subscription_invoice_take_back_its_credits_in_proportion(tally: Any) -> None:
    user = now_user(tally)
    user.subscribe("basic")
    user.wait_balance(1000)
    user.idle()
    (invoice,) = user.invoices()
    (payment,) = user.stripe.v1.invoice_payments.list(params={"invoice": invoice["id"]}).data
    payment_intent = payment.payment.payment_intent
    user.stripe.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 300})  # a third
    user.wait_balance(1000 - 333)
    spend(user, 600, "spent-before-the-rest")
    user.stripe.v1.refunds.create(params={"payment_intent": payment_intent})  # the rest
    user.wait_balance(1000 - 1000 - 600)  # every credit of the invoice back; what was spent is now owed
    user.idle()
    assert [a for k, a in kinds(tally, user) if k == "refund"] == [-333, -667]
    assert sql(tally, "SELECT amount_refunded, credits_clawed_back FROM subscription_invoices WHERE id = %s",
               invoice["id"]) == [(900, 1000)]
    with user.client() as client:
        credits = client.get("/v1/credits").json()
    assert (credits["balance"], credits["available"]) == (-600, -600)
    report = check(tally.database_url)
    assert report.ok, report.as_json()
