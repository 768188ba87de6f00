"""Promotion codes end to end (issue 18, item 2): `tally promo create` → Stripe (the sandbox) → a buyer types the
code on the hosted Checkout page → the webhook → the order and invoice record the discount; the coins stay the
pack's. The sandbox's Checkout refuses what the code's limits exclude (redemptions, expiry, first order, packs).

This module runs its own Tally and sandbox: it moves the sandbox's clock forward to expire a code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tally.cli import app as tally_cli
from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, advance_sandbox_clock, checkout, new_user,
                                             order_row, pay, sdk, sql, wait_processed, wait_until)
from tests.tally_harness import TallyServer, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


@pytest.fixture(scope="module")
def shop() -> Iterator[TallyServer]:
    with fresh_database() as url, TallyServer(url) as server:
        yield server


def promo(shop: TallyServer, *args: str) -> str:
    """Run `tally promo ...` against this Tally's database and sandbox, as an operator would beside it."""
    env = {"TALLY_DATABASE_URL": shop.database_url, "STRIPE_API_BASE": shop.sandbox.url,
           "TALLY_DATA_DIR": str(shop.settings.data_dir), "STRIPE_WEBHOOK_SECRET": shop.webhook_secret}
    result = CliRunner().invoke(tally_cli, ["promo", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def type_code(shop: TallyServer, session_id: str, code: str) -> httpx.Response:
    """What the hosted page's "Apply" button posts."""
    with httpx.Client(base_url=shop.sandbox.url, timeout=30) as page:
        return page.post(f"/c/pay/{session_id}/promotion_code", data={"promotionCode": code})


def buy_with_code(shop: TallyServer, user: str, code: str, pack: str = "plus") -> dict[str, Any]:
    with shop.client(user) as client:
        started = checkout(client, pack)
    applied = type_code(shop, started["session_id"], code)
    assert applied.status_code == 200, applied.text
    assert pay(shop, started["session_id"]).status_code == 303
    wait_processed(shop, started["session_id"], "checkout.session.completed")
    return order_row(shop, started["order_id"])


def refused(shop: TallyServer, user: str, code: str, pack: str = "plus") -> str:
    """The hosted page's message for a code it refuses; the session's total stays the pack's price."""
    with shop.client(user) as client:
        started = checkout(client, pack)
    page = type_code(shop, started["session_id"], code)
    assert page.status_code == 400, page.text
    session = sdk(shop).v1.checkout.sessions.retrieve(started["session_id"]).to_dict()
    assert session["discounts"] == [] and session["amount_total"] == session["amount_subtotal"]
    return re.sub(r"\s+", " ", page.text)


def test_two_redemptions_then_checkout_refuses(shop: TallyServer) -> None:
    out = promo(shop, "create", "--code", "LAUNCH20", "--percent-off", "20", "--max-redemptions", "2",
                "--packs", "plus")
    assert "LAUNCH20" in out and "20 % off once" in out

    first, second = (buy_with_code(shop, new_user(), "LAUNCH20") for _ in range(2))
    for order in (first, second):
        # 20 % of 9.99 USD is 2.00 (1.998 rounded); the coins are the Plus pack's, 1000 + 100 bonus.
        assert (order["status"], order["amount"], order["amount_subtotal"], order["amount_discount"]) == \
            ("paid", 799, 999, 200)
        assert order["promotion_code"] == "LAUNCH20" and order["stripe_promotion_code_id"].startswith("promo_")
        assert (order["coins"], order["bonus"]) == (1000, 100)
        [(balance,)] = sql(shop, "SELECT balance FROM wallet_balances WHERE user_id = %s", order["user_id"])
        assert balance == 1100
        [(amount, discount, lines)] = sql(shop, "SELECT amount, amount_discount, lines FROM invoices "
                                                "WHERE order_id = %s", order["id"])
        assert (amount, discount) == (799, 200)
        assert [(line["description"], line["amount"]) for line in lines] == \
            [("Plus pack (1000 coins + 100 bonus)", 999), ("Discount (LAUNCH20)", -200)]

    assert "maximum number of times" in refused(shop, new_user(), "LAUNCH20")

    listed = {row["code"]: row for row in json.loads(promo(shop, "list", "--json"))}
    row = listed["LAUNCH20"]
    assert (row["status"], row["times_redeemed"], row["max_redemptions"], row["orders"]) == ("used up", 2, 2, 2)
    assert row["revenue"] == {"usd": 1598} and row["discount_given"] == {"usd": 400}
    assert row["restricted_to"] == ["plus (pack)"]


def test_a_code_for_one_pack_is_refused_on_another(shop: TallyServer) -> None:
    promo(shop, "create", "--code", "MEGAONLY", "--amount-off", "1000", "--currency", "usd", "--packs", "mega")
    assert "not valid for the items" in refused(shop, new_user(), "MEGAONLY", pack="starter")
    order = buy_with_code(shop, new_user(), "MEGAONLY", pack="mega")
    assert (order["amount"], order["amount_discount"], order["coins"], order["bonus"]) == (8999, 1000, 10000, 3000)


def test_first_time_only_refuses_a_returning_buyer(shop: TallyServer) -> None:
    promo(shop, "create", "--code", "WELCOME", "--percent-off", "50", "--first-time-only")
    returning = new_user()
    with shop.client(returning) as client:
        started = checkout(client, "starter")
    pay(shop, started["session_id"])
    wait_processed(shop, started["session_id"], "checkout.session.completed")
    assert "prior transactions" in refused(shop, returning, "WELCOME")
    # Half of 4.99 USD: the discount rounds half up (2.50), so the buyer pays 2.49.
    assert buy_with_code(shop, new_user(), "WELCOME", pack="starter")["amount"] == 249


def test_admin_page_lists_creates_and_deactivates(shop: TallyServer) -> None:
    with shop.admin_client() as admin:
        created = admin.post("/admin/promotions", data={
            "code": "SPRING5", "kind": "amount", "value": "500", "currency": "usd", "duration": "repeating",
            "months": "3", "max_redemptions": "100", "expires": "2099-01-31", "plans": "pro"})
        assert created.status_code == 303, created.text
        page = admin.get("/admin/promotions")
        assert page.status_code == 200
        assert "SPRING5" in page.text and "5.00 USD off for 3 months" in page.text
        assert "through 2099-01-31" in page.text and "only pro (plan)" in page.text
        bad = admin.post("/admin/promotions", data={"code": "NOPE", "kind": "percent", "value": "120"})
        assert bad.status_code == 400 and "at most 100" in bad.text
        assert admin.post("/admin/promotions/SPRING5/deactivate").status_code == 303
    assert "inactive" in {r["code"]: r["status"] for r in json.loads(promo(shop, "list", "--json"))}["SPRING5"]
    assert "This code is invalid." in refused(shop, new_user(), "SPRING5")


def test_a_full_refund_of_a_discounted_order_takes_back_every_coin(shop: TallyServer) -> None:
    promo(shop, "create", "--code", "REFUNDME", "--percent-off", "10")
    order = buy_with_code(shop, new_user(), "REFUNDME", pack="pro")
    assert (order["amount"], order["amount_discount"]) == (2249, 250)
    sdk(shop).v1.refunds.create(params={"payment_intent": order["stripe_payment_intent_id"]})
    wait_until(lambda: order_row(shop, order["id"])["status"] == "refunded", "the order refunded")
    [(balance,)] = sql(shop, "SELECT balance FROM wallet_balances WHERE user_id = %s", order["user_id"])
    assert balance == 0 and order_row(shop, order["id"])["coins_clawed_back"] == 3000


def test_an_expired_code_is_refused(shop: TallyServer) -> None:
    # Runs last in this module: it moves the sandbox's clock two days on.
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    promo(shop, "create", "--code", "TODAYONLY", "--percent-off", "15", "--expires", today)
    advance_sandbox_clock(shop, 2 * 86400)
    assert "This code has expired." in refused(shop, new_user(), "TODAYONLY")
