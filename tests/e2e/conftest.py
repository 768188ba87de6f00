"""Browser fixtures: Playwright for Python driving Debian's Chromium (never ``playwright install``), and
``tally serve`` run as a user runs it, for the page tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

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
SERVING = re.compile(r"^tally: serving on (\S+)")
SANDBOX_AT = re.compile(r"^tally: stripe: offline sandbox at (\S+)")
# Kept from the test environment: tests/conftest.py raises the rate limits for the whole run (the page tests
# sign in more often than 10 times a minute from one address). Nothing else of TALLY_* / STRIPE_* is passed.
KEPT_SETTINGS = ("TALLY_RATE_LIMIT_USER", "TALLY_RATE_LIMIT_IP", "TALLY_RATE_LIMIT_API_KEY", "TALLY_RATE_LIMIT_LOGIN")


@dataclass(frozen=True)
class Endpoint:
    url: str


@dataclass
class ServedTally:
    """A ``tally serve`` process: the same attributes page tests use from the in-thread harness (``url``,
    ``sandbox.url``), its data directory and everything it printed."""

    process: subprocess.Popen[str]
    data_dir: Path
    url: str = ""
    sandbox: Endpoint = Endpoint("")
    output: list[str] = field(default_factory=list)

    def printed(self) -> str:
        return "".join(self.output)


def _drain(served: ServedTally) -> None:
    # Read everything the server prints, so a full pipe can never block it; the test reads ``output``.
    assert served.process.stdout is not None
    for line in served.process.stdout:
        served.output.append(line)


def _wait_started(served: ServedTally, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for line in list(served.output):
            if (found := SERVING.match(line)) is not None:
                served.url = found.group(1).rstrip("/")
            if (found := SANDBOX_AT.match(line)) is not None:
                served.sandbox = Endpoint(found.group(1).rstrip("/"))
        if served.url:
            try:
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"tally serve did not start:\n{served.printed()}")
        time.sleep(0.2)


def stop_served(served: ServedTally) -> None:
    """Ctrl+C, as a user stops it (uvicorn shuts down, the embedded PostgreSQL and the sandbox stop); killed
    only if it does not stop in time. Signals go to its own process group (start_new_session), nothing else."""
    if served.process.poll() is None:
        os.killpg(served.process.pid, signal.SIGINT)
        try:
            served.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait()


@pytest.fixture(scope="module")
def served_tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTally]:
    """``tally serve`` with no database URL and no Stripe key: embedded PostgreSQL (pgserver) in a fresh data
    directory and the offline sandbox it starts, on a free port. One per test module (starting PostgreSQL
    from an empty directory takes seconds)."""
    from tests.tally_harness import free_port

    home = tmp_path_factory.mktemp("tally-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_")) or k in KEPT_SETTINGS}
    env["TALLY_DATA_DIR"] = str(home / "data")
    tally_cmd = Path(sys.executable).parent / "tally"
    process = subprocess.Popen([str(tally_cmd), "serve", "--port", str(free_port())], cwd=home, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    served = ServedTally(process, home / "data")
    threading.Thread(target=_drain, args=(served,), daemon=True).start()
    try:
        _wait_started(served, timeout=120)
        assert served.sandbox.url, f"tally serve did not say where its sandbox is:\n{served.printed()}"
        yield served
    finally:
        stop_served(served)
