"""The operator dashboard in Debian's Chromium: sign in with the API key, the seeded October 2026 numbers, the
server-drawn SVG charts painted with the dashboard's stylesheet (nothing blocked by the Content-Security-Policy,
nothing fetched from another host), replay a failed event, and phone width. Screenshots go to
tests/e2e/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.admin_seed import FIRST_DAY, LAST_DAY, PLANS_TOML, seed
from tests.integration.purchase_flow import sql, wait_until
from tests.tally_harness import TallyServer, fresh_database

pytestmark = [pytest.mark.e2e]

PERIOD = f"/admin?from={FIRST_DAY}&to={LAST_DAY}"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TallyServer]:
    plans = tmp_path_factory.mktemp("plans") / "plans.toml"
    plans.write_text(PLANS_TOML)
    with fresh_database() as url:
        seed(url)
        with TallyServer(url, TALLY_PLANS=str(plans)) as tally:
            yield tally


def sign_in(page: Any, server: TallyServer) -> None:
    page.goto(server.url + PERIOD)
    page.wait_for_url(f"{server.url}/admin/login**")
    page.get_by_label("API key or admin token").fill(server.api_key)
    page.get_by_role("button", name="Sign in to the dashboard").click()
    page.wait_for_url(server.url + PERIOD)


def test_dashboard_renders_its_charts(page: Any, server: TallyServer, screenshots: Path) -> None:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    foreign: list[str] = []
    page.on("request", lambda req: foreign.append(req.url) if not req.url.startswith(server.url) else None)

    sign_in(page, server)
    assert page.get_by_role("heading", name="Operations dashboard").is_visible()
    assert page.get_by_test_id("mrr-usd").inner_text() == "83.50 USD"
    assert page.get_by_test_id("payment-success-rate").inner_text() == "69.2 %"

    charts = page.locator("svg.chart")
    assert charts.count() >= 5
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 30
    # Bars are drawn with real heights and painted by admin.css (a blocked stylesheet would leave them black).
    heights = page.eval_on_selector_all("svg.chart rect.bar", "rects => rects.map(r => r.getBBox().height)")
    assert sum(1 for h in heights if h > 0) >= 8
    fill = page.eval_on_selector("svg.chart rect.bar", "r => getComputedStyle(r).fill")
    assert fill == "rgb(59, 55, 200)"
    assert page.locator("svg.chart polyline.line").count() >= 3  # success rate, MRR USD, MRR EUR
    page.screenshot(path=str(screenshots / "admin-dashboard.png"), full_page=True)

    assert problems == [] and foreign == []


def test_replay_a_failed_event_from_the_page(page: Any, server: TallyServer) -> None:
    sign_in(page, server)
    page.get_by_role("button", name="Replay evt_bad_0").click()
    page.wait_for_url(f"{server.url}/admin?replayed=evt_bad_0**")
    assert "evt_bad_0 is queued" in page.get_by_role("status").first.inner_text()
    wait_until(lambda: sql(server, "SELECT status FROM webhook_events WHERE id = 'evt_bad_0'") == [("ignored",)],
               "the replayed event processed")


def test_phone_width(browser: Any, server: TallyServer, screenshots: Path) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sign_in(page, server)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the dashboard is {width}px wide at {PHONE['width']}px"
        page.screenshot(path=str(screenshots / "admin-dashboard-phone.png"), full_page=True)
    finally:
        context.close()
