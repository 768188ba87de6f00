"""The operator's view of credits and disputes: the dashboard's credits outstanding and credits per day (from the
ledger's counters), the Disputes page and the dashboard's open disputes, and ``tally disputes``; each read of the
disputes table goes through its index. The counters and disputes are written straight into a fresh database (the
ledger's and the dispute handler's own tests cover how they get there), and the expected numbers are worked out by
hand from ``credits_disputes_seed``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from tally.cli import app as cli
from tally.db import libpq_url
from tally.reversals.repository import CLOSED_SQL, OPEN_SQL
from tests.integration.credits_disputes_seed import seed
from tests.integration.purchase_flow import new_user
from tests.tally_harness import TallyServer, fresh_database


@pytest.fixture(scope="module")
def server() -> Iterator[TallyServer]:
    with fresh_database() as url:
        seed(url, int(time.time()))
        with TallyServer(url) as tally:
            yield tally


def shown(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{re.escape(name)}">([^<]*)<', html)
    assert match, name
    return match.group(1).strip()


def table(html: str, testid: str) -> str:
    match = re.search(rf'<table[^>]*data-testid="{testid}">(.*?)</table>', html, re.DOTALL)
    assert match, testid
    return match.group(1)


def rows(html: str, testid: str) -> list[str]:
    return re.findall(r'<tr data-dispute="([^"]+)"', table(html, testid))


OCTOBER = "/admin?from=2026-10-01&to=2026-10-31"


def test_dashboard_shows_credits_outstanding_and_per_day(server: TallyServer) -> None:
    with server.admin_client() as admin:
        html = admin.get(OCTOBER).text
    assert shown(html, "credits-outstanding-paid") == "555"
    assert shown(html, "credits-outstanding-promotional") == "150"
    assert shown(html, "credits-outstanding-money-usd") == "55.00 USD"  # 5499.5 cents, rounded half up
    assert "credits-outstanding-money-eur" not in html  # every euro's credits were used
    days = dict(re.findall(r'<tr data-day="([^"]+)"><td data-label="Day">[^<]*</td>(.*?)</tr>',
                           table(html, "credits-per-day")))
    numbers = {day: re.findall(r'class="num">([^<]*)<', cells) for day, cells in days.items()}
    assert numbers == {"2026-10-03": ["1,200", "0", "0"], "2026-10-04": ["0", "320", "0"],
                       "2026-10-20": ["0", "0", "130"]}  # Oct 21 only took back: not in the chart
    chart = re.search(r'<svg class="chart"[^>]*aria-labelledby="([^"]+)"[^>]*>.{0,200}Credits granted, used and '
                      r'expired per day</title><desc[^>]*>([^<]*)<', html, re.DOTALL)
    assert chart, "the credits chart"
    assert "granted 1,200 in all; used 320 in all; expired 130 in all" in chart.group(2)
    assert 'class="bar used"' in html and 'class="bar expired"' in html
    assert 'style="' not in html


def test_a_grant_now_moves_outstanding(server: TallyServer) -> None:
    def outstanding() -> tuple[str, str]:
        with server.admin_client() as admin:
            html = admin.get("/admin?days=1").text
        return shown(html, "credits-outstanding-paid"), shown(html, "credits-outstanding-promotional")

    before = outstanding()
    with server.admin_client() as admin:
        answer = admin.post("/v1/admin/credits/grants", json={"user_id": new_user(), "amount": 70,
                                                               "category": "promotional", "reason": "Survey"})
    assert answer.status_code == 201, answer.text
    after = outstanding()
    assert after == (before[0], f"{int(before[1].replace(',', '')) + 70:,}")


def test_disputes_page_lists_open_ones_by_deadline_then_recent_closed(server: TallyServer) -> None:
    with server.admin_client() as admin:
        page = admin.get("/admin/disputes")
    assert page.status_code == 200, page.text
    html = page.text
    assert rows(html, "open-disputes") == ["dp_late", "dp_soon", "dp_later", "dp_review"]
    assert rows(html, "closed-disputes") == ["dp_lost", "dp_won"]  # opened 50 and 60 days ago
    assert {d: shown(html, f"time-left-{d}") for d in ("dp_late", "dp_soon", "dp_later", "dp_review")} == {
        "dp_late": "overdue", "dp_soon": "due within a day", "dp_later": "6 days left",
        "dp_review": "no deadline given"}
    won = re.search(r'<tr data-dispute="dp_won">(.*?)</tr>', html, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert "Won" in won and re.findall(r'class="num">([^<]*)<', won) == ["9.99 USD", "500", "500"]
    assert "<h1>Disputes</h1>" in html and 'aria-current="page">Disputes</a>' in html
    assert "<th scope=\"col\">Evidence due</th>" in html and 'style="' not in html


def test_dashboard_shows_the_open_disputes_soonest_first(server: TallyServer) -> None:
    with server.admin_client() as admin:
        html = admin.get("/admin").text
    assert rows(html, "dashboard-disputes") == ["dp_late", "dp_soon", "dp_later", "dp_review"]
    assert 'href="/admin/disputes"' in html


def test_who_may_see_the_disputes(server: TallyServer) -> None:
    anonymous = httpx.get(server.url + "/admin/disputes")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/admin/login?next=/admin/disputes"
    with server.client("just-a-user") as user:
        assert user.get("/admin/disputes").status_code == 403


def test_tally_disputes_lists_open_ones_with_days_left(server: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_DATABASE_URL", server.database_url)
    listed = CliRunner().invoke(cli, ["disputes"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "tally: 4 open disputes, the soonest deadline first"
    ids = [line.split()[0] for line in lines[1::2]]
    assert ids == ["dp_late", "dp_soon", "dp_later", "dp_review"]
    assert "19.99 USD  duplicate  [needs_response]" in lines[1] and lines[1].endswith("(overdue)")
    assert lines[5].endswith("(6 days left)") and lines[7].endswith("no deadline given")
    assert "user alice, invoice in_dp_late, charge ch_dp_late; 1,000 credits taken back" in lines[2]

    as_json = CliRunner().invoke(cli, ["disputes", "--json", "--limit", "2"])
    assert as_json.exit_code == 0, as_json.output
    found = json.loads(as_json.stdout)
    assert [(d["id"], d["days_left"], d["credits_withdrawn"]) for d in found] == [("dp_late", 0, 1000),
                                                                                  ("dp_soon", 1, 500)]


@pytest.mark.parametrize(("query", "index"), [(OPEN_SQL, "ix_disputes_open"),
                                              (CLOSED_SQL, "ix_disputes_stripe_created")])
def test_the_disputes_are_read_through_their_indexes(server: TallyServer, query: Any, index: str) -> None:
    # The planner picks a sequential scan on a table this small; with it off, a query that cannot use the index
    # (a condition the partial index's predicate does not cover) would still scan the table.
    with psycopg.connect(libpq_url(server.database_url)) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + str(query).replace(":limit", "10")))
    assert index in plan and "Seq Scan" not in plan, plan
