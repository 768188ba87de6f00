"""The dashboard's credits and the Disputes page in Debian's Chromium: the credits chart's three series painted
in their own colours by admin.css (nothing blocked by the Content-Security-Policy), the Disputes page reached
from the navigation with its tables read by their headers, and neither wider than a phone. Screenshots go to
tests/e2e/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.credits_disputes_seed import seed
from tests.tally_harness import TallyServer, fresh_database

pytestmark = [pytest.mark.e2e]

OCTOBER = "/admin?from=2026-10-01&to=2026-10-31"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server() -> Iterator[TallyServer]:
    with fresh_database() as url:
        seed(url, int(time.time()))
        with TallyServer(url) as tally:
            yield tally


def sign_in(page: Any, server: TallyServer, path: str) -> None:
    page.goto(server.url + path)
    page.wait_for_url(f"{server.url}/admin/login**")
    page.get_by_label("API key or admin token").fill(server.api_key)
    page.get_by_role("button", name="Sign in to the dashboard").click()
    page.wait_for_url(server.url + path)


def test_the_credits_chart_and_the_disputes_page(page: Any, server: TallyServer, screenshots: Path) -> None:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    sign_in(page, server, OCTOBER)

    assert page.get_by_test_id("credits-outstanding-paid").inner_text() == "555"
    chart = page.get_by_role("img", name="Credits granted, used and expired per day")
    fills = {css: page.eval_on_selector(f"svg.chart rect.bar.{css}", "r => getComputedStyle(r).fill")
             for css in ("granted", "used", "expired")}
    assert fills == {"granted": "rgb(59, 55, 200)", "used": "rgb(15, 123, 138)", "expired": "rgb(179, 92, 0)"}
    heights = page.eval_on_selector_all("svg.chart rect.bar.used", "rects => rects.map(r => r.getBBox().height)")
    assert sum(1 for h in heights if h > 0) == 1  # used on Oct 4 only
    chart.scroll_into_view_if_needed()
    page.get_by_text("The numbers per day").click()
    assert page.get_by_role("row", name="2026-10-04").get_by_role("cell").all_inner_texts() == [
        "2026-10-04", "0", "320", "0"]
    page.locator("section", has=page.locator("#credits-heading")).screenshot(path=str(screenshots / "admin-credits.png"))

    page.get_by_role("navigation", name="Operations").get_by_role("link", name="Disputes").click()
    page.wait_for_url(server.url + "/admin/disputes")
    assert page.get_by_role("heading", name="Disputes", level=1).is_visible()
    open_table = page.get_by_role("table", name="Open disputes, the soonest evidence deadline first")
    first = open_table.get_by_role("row").nth(1)
    assert "dp_late" in first.inner_text() and "overdue" in first.inner_text()
    assert page.get_by_role("table", name="Closed disputes, the most recently opened first").get_by_role(
        "row").count() == 3  # the header and two
    page.screenshot(path=str(screenshots / "admin-disputes.png"), full_page=True)
    assert problems == []


def test_phone_width(browser: Any, server: TallyServer, screenshots: Path) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        sign_in(page, server, "/admin/disputes")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the Disputes page is {width}px wide at {PHONE['width']}px"
        page.screenshot(path=str(screenshots / "admin-disputes-phone.png"), full_page=True)
    finally:
        context.close()
