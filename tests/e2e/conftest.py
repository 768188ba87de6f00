"""Browser fixtures: Playwright for Python driving Debian's Chromium (never ``playwright install``), and
``tally serve`` run as a user runs it, for the page tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.served_tally import ServedTally, served

CHROMIUM = "/usr/bin/chromium"
# Offline and quiet: no update checks, no sync, no GPU in containers, no sandbox as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SCREENSHOTS = Path(__file__).parent / "screenshots"  # git-ignored


# Module scope: Playwright's sync API keeps an event loop running on the main thread while it is open,
# which would break later tests that call asyncio.run (migrations, SQL helpers).
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A fresh context per test (no shared cookies), with shop pages answered locally.

    ``https://shop.example/...`` stands for the merchant's own site (success and cancel pages): the browser
    never leaves the machine for it.
    """
    context = browser.new_context()
    context.route("https://shop.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<!doctype html><title>Shop</title><h1>Shop</h1>"))
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


# -- `tally serve` on the embedded defaults ----------------------------------------------------------------
@pytest.fixture(scope="module")
def served_tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTally]:
    """``tally serve`` with no database URL and no Stripe key (``tests.served_tally``). One per test module
    (starting PostgreSQL from an empty directory takes seconds)."""
    with served(tmp_path_factory.mktemp("tally-serve")) as tally:
        yield tally
