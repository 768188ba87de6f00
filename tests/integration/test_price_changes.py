"""Price changes for existing subscribers (issue 18, item 5), on the sandbox's test clocks: `tally plans migrate`
gives each subscriber on the old price a subscription schedule; the notice goes out `--notice-days` before the
switch; each renews at the new price at its first renewal on or after the date; `--dry-run` said so first.

This module runs its own Tally whose plans file already prices Basic at 12.00 USD a month (new sign-ups pay it
at once); its subscribers were on a 9.00 USD price from before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tally.cli import app as tally_cli
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, sdk, sql, wait_until
from tests.integration.subscription_flow import DAY, T0, add_months, clock_user, plan_prices
from tests.tally_harness import TallyServer, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)
HOUR = 3600
DEFAULT_PLANS = Path(__file__).parents[2] / "tally" / "subscriptions" / "default_plans.toml"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TallyServer]:
    plans = tmp_path_factory.mktemp("plans") / "plans.toml"
    plans.write_text(DEFAULT_PLANS.read_text().replace("month = { amount = 900,", "month = { amount = 1200,"))
    with fresh_database() as url, TallyServer(url, TALLY_PLANS=str(plans)) as server:
        yield server


def migrate(shop: TallyServer, *args: str) -> dict[str, Any]:
    env = {"TALLY_DATABASE_URL": shop.database_url, "STRIPE_API_BASE": shop.sandbox.url,
           "TALLY_DATA_DIR": str(shop.settings.data_dir), "STRIPE_WEBHOOK_SECRET": shop.webhook_secret,
           "TALLY_PLANS": str(shop.settings.plans_path)}
    result = CliRunner().invoke(tally_cli, ["plans", "migrate", "--plan", "basic", "--interval", "month",
                                            "--effective", "2026-02-15", "--notice-days", "30", "--json", *args],
                                env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def old_price(shop: TallyServer) -> str:
    """The 9.00 USD Basic price the early subscribers signed up at (the plans file has moved on since)."""
    plan_prices(shop)  # the plan's product and today's price
    price = sdk(shop).v1.prices.create(params={
        "product": "tally_plan_basic", "unit_amount": 900, "currency": "usd", "recurring": {"interval": "month"},
        "metadata": {"tally_plan_id": "basic", "interval": "month", "credits": "1000"}})
    return str(price.id)


def subscriber(shop: TallyServer, price: str, frozen_time: int) -> Any:
    user = clock_user(shop, frozen_time=frozen_time)
    user.stripe.v1.subscriptions.create(params={"customer": user.customer_id, "items": [{"price": price}]})
    user.wait_subscription("active", lambda s: s["status"] == "active")
    return user


def amounts(user: Any) -> list[int]:
    return [i["amount_paid"] for i in user.invoices()]


def test_subscribers_move_at_their_first_renewal_after_the_date_with_notice(shop: TallyServer) -> None:
    price = old_price(shop)
    early = subscriber(shop, price, T0)  # renews on the 1st
    later = subscriber(shop, price, T0 + 10 * DAY)  # renews on the 11th

    planned = migrate(shop, "--to-price", "1200", "--dry-run")
    assert planned["change_id"] is None
    by_sub = {m["subscription_id"]: m for m in planned["moves"]}
    first, second = (by_sub[u.subscription()["id"]] for u in (early, later))
    # 1 Feb and 11 Feb come before 15 Feb: each moves at the renewal after, with 30 days' notice before it.
    assert (first["switch_on"], first["notice_on"], first["from_amount"], first["to_amount"]) == \
        ("2026-03-01", "2026-01-30", 900, 1200)
    assert (second["switch_on"], second["notice_on"]) == ("2026-03-11", "2026-02-09")
    assert first["skipped"] is None and second["skipped"] is None
    assert sql(shop, "SELECT count(*) FROM price_change_items") == [(0,)]  # a dry run changes nothing

    applied = migrate(shop, "--to-price", "1200")
    assert applied["change_id"] and applied["moves"] == planned["moves"]
    again = migrate(shop, "--to-price", "plan:basic:month", "--dry-run")  # by lookup key: nobody moves twice
    assert all(m["skipped"] == "has a scheduled change already" for m in again["moves"])

    early.advance(T0 + 29 * DAY + HOUR)  # 30 January: the notice is due
    wait_until(lambda: early.outbox("price_change"), "the early subscriber's notice")
    [notice] = early.outbox("price_change")
    assert "from $9.00 to $12.00 per month, from your renewal on March 1, 2026" in notice["body"]
    assert later.outbox("price_change") == []  # its own clock has not reached its notice day
    later.advance(T0 + 39 * DAY + HOUR)  # 9 February
    wait_until(lambda: later.outbox("price_change"), "the later subscriber's notice")

    for user, day in ((early, 0), (later, 10)):
        user.advance(add_months(T0 + day * DAY, 1) + 2 * HOUR)
        user.advance(add_months(T0 + day * DAY, 2) + 2 * HOUR)
        user.idle()
        assert amounts(user) == [900, 900, 1200]  # the old price until the switch, then the new one
        assert user.subscription()["current_period_end"] == add_months(T0 + day * DAY, 3)

    with shop.admin_client() as admin:
        page = admin.get("/admin/price-changes")
    assert page.status_code == 200
    assert "basic (monthly)" in page.text and "12.00 USD" in page.text and "2 of 2" in page.text


def test_an_amount_other_than_the_plans_file_is_refused(shop: TallyServer) -> None:
    env = {"TALLY_DATABASE_URL": shop.database_url, "STRIPE_API_BASE": shop.sandbox.url,
           "TALLY_DATA_DIR": str(shop.settings.data_dir), "TALLY_PLANS": str(shop.settings.plans_path)}
    result = CliRunner().invoke(tally_cli, ["plans", "migrate", "--plan", "basic", "--to-price", "1500",
                                            "--effective", "2026-02-15"], env=env)
    assert result.exit_code == 1
    assert "prices basic at 1200 per month, not 1500" in result.output


def test_the_first_renewal_counts_from_the_cycle_anchor() -> None:
    from tally.price_changes.service import first_renewal_from

    jan31 = 1769817600  # 2026-01-31 00:00 UTC
    feb28, mar31 = 1772236800, 1774915200
    assert first_renewal_from(jan31, feb28, "month", feb28 - DAY) == feb28
    assert first_renewal_from(jan31, feb28, "month", feb28 + 1) == mar31  # not 28 March
