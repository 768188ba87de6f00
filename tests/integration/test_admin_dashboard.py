"""The operator dashboard's numbers against values worked out by hand from ``admin_seed`` (October 2026), the
page over HTTP (who may see it, the cookie sign-in, replay with CSRF, search), and the history trigger."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tally.admin import service
from tally.admin.service import Period
from tally.db import Database
from tally.subscriptions.plans import parse_plans
from tests.integration.admin_seed import FIRST_DAY, LAST_DAY, PLANS_TOML, seed
from tests.integration.purchase_flow import sql, wait_until
from tests.tally_harness import TallyServer, fresh_database

OCTOBER = Period(date(2026, 10, 1), date(2026, 10, 31))


@pytest.fixture(scope="module")
def seeded_url() -> Iterator[str]:
    with fresh_database() as url:
        seed(url)
        yield url


@pytest.fixture(scope="module")
def plans_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plans.toml"
        path.write_text(PLANS_TOML)
        yield path


async def numbers(url: str, query: str | None = None) -> service.Dashboard:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            return await service.dashboard(session, parse_plans(PLANS_TOML), OCTOBER, query)
    finally:
        await db.dispose()


async def test_revenue_per_currency_and_day(seeded_url: str) -> None:
    d = await numbers(seeded_url)
    assert [r.currency for r in d.revenue] == ["eur", "myr", "usd"]
    eur, myr, usd = d.revenue
    # USD packs: ord-1 499 + ord-2 999 (refunded later) + ord-8 999 (Oct 31, 23:30); ord-6 is Sep 30, ord-5
    # failed, ord-7 pending. USD subscriptions: in_1 2000 + in_2 2900 + in_4 900 (in_5 is September, in_6 is 0).
    assert (usd.currency, usd.packs, usd.subscriptions, usd.gross, usd.refunded) == ("usd", 2497, 5800, 8297, 999)
    assert (eur.currency, eur.packs, eur.subscriptions, eur.gross, eur.refunded) == ("eur", 499, 49900, 50399, 0)
    assert (myr.currency, myr.packs, myr.subscriptions, myr.gross) == ("myr", 2290, 0, 2290)
    by_day = {i + 1: v for i, v in enumerate(usd.per_day) if v}
    assert by_day == {3: 1498, 10: 2900, 12: 2900, 31: 999}
    assert len(usd.per_day) == 31


async def test_payment_success_rate_methods_and_decline_codes(seeded_url: str) -> None:
    p = (await numbers(seeded_url)).payments
    assert (p.succeeded, p.failed) == (9, 4)  # the Sep 30 decline is outside the period
    assert p.success_rate == pytest.approx(9 / 13)
    assert p.grade == "critical"  # 69 % < 90 %
    assert p.by_method == {"card": [8, 4], "fpx": [1, 0]}
    assert p.decline_codes == [("insufficient_funds", 2), ("expired_card", 1), ("generic_decline", 1)]
    days = {i + 1: v for i, v in enumerate(p.per_day) if v != (0, 0)}
    assert days == {3: (2, 0), 5: (0, 1), 7: (2, 0), 8: (0, 2), 10: (2, 0), 12: (1, 0), 16: (1, 0), 25: (0, 1),
                    31: (1, 0)}


async def test_webhook_health_and_failed_events(seeded_url: str) -> None:
    d = await numbers(seeded_url)
    w = d.webhooks
    # October: 9 charge.succeeded ignored, 4 payment failures + 5 checkouts processed, 2 failed, 1 pending.
    assert w.by_status == {"ignored": 9, "processed": 9, "failed": 2, "pending": 1}
    assert w.health == pytest.approx(18 / 20)
    assert w.grade == "critical"
    assert w.failed_by_type == [("customer.subscription.updated", 1), ("invoice.paid", 1)]
    assert w.oldest_pending_seconds > 0
    # Every failed event, newest first, whatever the period: they need an operator.
    assert [e["id"] for e in d.failed_events] == ["evt_bad_2", "evt_bad_1", "evt_bad_0"]


async def test_mrr_movement_churn_and_arpu(seeded_url: str) -> None:
    m = (await numbers(seeded_url)).mrr
    usd, eur = m.by_currency["usd"], m.by_currency["eur"]
    # Start (Oct 1): s1 900 + s2 900 + s3 2417 (29000/12 rounded up) + s4 2900 + s5 900 + s10 900 = 8917.
    # End: s1 900 + s2 2900 + s3 750 + s8 2900 + s10 900 (past due) = 8350.
    assert (usd.start, usd.new, usd.expansion, usd.contraction, usd.churn, usd.end) == (8917, 2900, 2000, 1667, 3800,
                                                                                        8350)
    assert usd.start + usd.new + usd.expansion - usd.contraction - usd.churn == usd.end
    assert (usd.subscribers_start, usd.subscribers_end) == (6, 5)
    # EUR: s6 4900 throughout; s7's trial turned into a 49900/year subscription = 4158.33 → 4158.
    assert (eur.start, eur.new, eur.expansion, eur.contraction, eur.churn, eur.end) == (4900, 4158, 0, 0, 0, 9058)
    assert (m.counting_at_start, m.churned, m.involuntary) == (7, 2, 1)  # s4 cancelled, s5 unpaid after past due
    assert m.churn_rate == pytest.approx(2 / 7)
    assert m.involuntary_share == pytest.approx(0.5)
    assert (usd.arpu, eur.arpu) == (1670, 4529)  # 8350 / 5, 9058 / 2
    assert not m.unpriced


async def test_mrr_per_day(seeded_url: str) -> None:
    series = (await numbers(seeded_url)).mrr_per_day
    usd, eur = series["usd"], series["eur"]
    assert usd[0] == 8917 and usd[30] == 8350
    assert usd[9] == 8917 + 2000  # Oct 10: s2 upgraded that day
    assert usd[14] == 900 + 2900 + 2417 + 900 + 2900 + 900  # Oct 15: s4 gone, s8 new since the 12th
    assert eur[14] == 4900 and eur[15] == 9058


async def test_order_search(seeded_url: str) -> None:
    recent = (await numbers(seeded_url)).orders
    assert [o["id"] for o in recent] == ["ord-8", "ord-7", "ord-5", "ord-4", "ord-3", "ord-2", "ord-1", "ord-6"]
    for query, expected in [("u1", ["ord-8", "ord-1"]), ("cus_u4", ["ord-4"]), ("pi_o3", ["ord-3"]),
                            ("cs_test_o2", ["ord-2"]), ("U5@Example.com", ["ord-5"]), ("nobody", [])]:
        assert [o["id"] for o in (await numbers(seeded_url, query)).orders] == expected, query


def test_history_records_plan_and_status_changes_only(seeded_url: str) -> None:
    server = type("S", (), {"database_url": seeded_url})
    count = "SELECT count(*) FROM subscription_history WHERE subscription_id = 'sub_s1'"
    assert sql(server, count) == [(1,)]
    sql(server, "UPDATE subscriptions SET cancel_at_period_end = true WHERE id = 'sub_s1'")
    assert sql(server, count) == [(1,)]
    sql(server, "UPDATE subscriptions SET cancel_at_period_end = false WHERE id = 'sub_s1'")
    assert sql(server, count) == [(1,)]


# -- the page over HTTP -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(seeded_url: str, plans_file: Path) -> Iterator[TallyServer]:
    with TallyServer(seeded_url, TALLY_PLANS=str(plans_file)) as tally:
        yield tally


def shown(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{re.escape(name)}">([^<]*)<', html)
    assert match, name
    return match.group(1).strip()


PERIOD = f"/admin?from={FIRST_DAY}&to={LAST_DAY}"


def test_the_page_shows_the_hand_computed_numbers_and_formulas(server: TallyServer) -> None:
    with server.admin_client() as client:
        page = client.get(PERIOD)
    assert page.status_code == 200, page.text
    html = page.text
    expected = {
        "revenue-usd": "82.97 USD", "revenue-eur": "503.99 EUR", "revenue-myr": "22.90 MYR",
        "refunded-usd": "9.99 USD", "payment-success-rate": "69.2 %", "payment-counts": "9 succeeded, 4 failed",
        "mrr-usd": "83.50 USD", "mrr-eur": "90.58 EUR", "mrr-start-usd": "89.17 USD", "mrr-new-usd": "29.00 USD",
        "mrr-expansion-usd": "20.00 USD", "mrr-contraction-usd": "16.67 USD", "mrr-churn-usd": "38.00 USD",
        "mrr-end-usd": "83.50 USD", "mrr-new-eur": "41.58 EUR", "churn-rate": "28.6 %", "involuntary-share": "50.0 %",
        "arpu-usd": "16.70 USD", "arpu-eur": "45.29 EUR", "decline-insufficient_funds": "2",
        "decline-expired_card": "1",
    }
    assert {name: shown(html, name) for name in expected} == expected
    for formula in ("succeeded ÷ (succeeded + failed)", "annual ÷ 12", "new + expansion − contraction − churn",
                    "÷ subscriptions paying at the start", "MRR at the end ÷ paying subscriptions at the end"):
        assert formula in html
    assert html.count('<svg class="chart"') >= 5  # revenue ×3, success rate, decline codes, MRR ×2
    assert 'href="/admin/health"' in html
    assert "<script" not in html and "http://" not in html.split("<body", 1)[1].replace(server.url, "")
    assert 'style="' not in html  # the CSP allows no inline style


def test_search_orders_on_the_page(server: TallyServer) -> None:
    with server.admin_client() as client:
        html = client.get(PERIOD + "&q=cus_u4").text
    rows = re.findall(r"<code>(ord-\d)</code>", html)
    assert rows == ["ord-4"]


def test_a_bad_period_is_a_400_page(server: TallyServer) -> None:
    with server.admin_client() as client:
        page = client.get("/admin?from=2026-10-31&to=2026-10-01")
    assert page.status_code == 400 and "first day comes after its last day" in page.text


def _token(server: TallyServer, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "ops-1", "iat": now, "exp": now + 600, **claims}, server.settings.jwt_secret,
                      algorithm="HS256")


def test_who_may_see_the_dashboard(server: TallyServer) -> None:
    anonymous = httpx.get(server.url + PERIOD)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/admin/login?next=/admin")
    with server.client("just-a-user") as user:
        assert user.get("/admin").status_code == 403
    for claims in ({"role": "admin"}, {"app_metadata": {"role": "admin"}}):
        ok = httpx.get(server.url + PERIOD, headers={"Authorization": f"Bearer {_token(server, **claims)}"})
        assert ok.status_code == 200, claims
    with server.admin_client() as admin:
        replay_without_form = admin.post("/admin/events/evt_none/replay")
        assert replay_without_form.status_code == 404  # a bearer header needs no CSRF token; no such event


def _login(client: httpx.Client, key: str) -> httpx.Response:
    form = client.get("/admin/login?next=/admin")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    return client.post("/admin/login", data={"key": key, "next": PERIOD, "csrf_token": csrf})


def test_browser_sign_in_cookie_and_replay_with_csrf(server: TallyServer) -> None:
    with httpx.Client(base_url=server.url) as browser:
        refused = _login(browser, "not-the-key")
        assert refused.status_code == 401 and "was not accepted" in refused.text
        assert "tally_admin" not in browser.cookies

        signed_in = _login(browser, server.api_key)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == PERIOD
        cookie = signed_in.headers["set-cookie"]
        assert "tally_admin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/admin" in cookie and server.api_key not in cookie

        page = browser.get(PERIOD)
        assert page.status_code == 200 and shown(page.text, "mrr-usd") == "83.50 USD"
        assert 'href="/admin/health"' in page.text
        health = browser.get("/admin/health")  # the dashboard's link works with the same cookie
        assert health.status_code == 200 and "Production health:" in health.text
        csrf = re.search(r'action="/admin/events/evt_bad_0/replay".*?name="csrf_token" value="([^"]+)"',
                         page.text, re.S).group(1)  # type: ignore[union-attr]

        forged = browser.post("/admin/events/evt_bad_0/replay", data={"csrf_token": "guess"})
        assert forged.status_code == 403
        assert sql(server, "SELECT status FROM webhook_events WHERE id = 'evt_bad_0'") == [("failed",)]

        replayed = browser.post("/admin/events/evt_bad_0/replay", data={"csrf_token": csrf})
        assert replayed.status_code == 303 and replayed.headers["location"].startswith("/admin?replayed=evt_bad_0")
        # customer.updated has no handler: processed again, it ends "ignored".
        wait_until(lambda: sql(server, "SELECT status FROM webhook_events WHERE id = 'evt_bad_0'") == [("ignored",)],
                   "the replayed event processed")

        out = browser.post("/admin/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert browser.get("/admin").status_code == 303  # signed out: back to the sign-in page


def test_a_cookie_from_another_key_is_refused(server: TallyServer) -> None:
    with httpx.Client(base_url=server.url) as browser:
        assert _login(browser, server.api_key).status_code == 303
        value = browser.cookies["tally_admin"]
        payload, _, signature = value.rpartition(".")
        browser.cookies.clear()
        browser.cookies.set("tally_admin", payload + "." + signature[::-1], domain="127.0.0.1", path="/admin")
        assert browser.get("/admin").status_code == 303
