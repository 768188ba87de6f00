"""Every page a person meets, Tally's and the sandbox's hosted ones, scanned with axe-core (WCAG 2.1 A and AA;
from the npm registry, installed by scripts/test into tests/e2e/axe): no violation anywhere. After a failed
submit the focus is where the problem is (the first invalid field, else the alert), on Tally's pages and the
sandbox's. The sandbox's hosted pages send the same security headers as Tally's."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.served_tally import ServedTally

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: scripts/test installs it (npm ci --prefix tests/e2e/axe)")
    return AXE.read_text()


@pytest.fixture
def page(browser: Any) -> Any:
    # axe is injected by the test itself: the pages' CSP rightly refuses inline script.
    context = browser.new_context(bypass_csp=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def violations(page: Any, axe_source: str) -> list[str]:
    page.evaluate(axe_source)
    found = page.evaluate("async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
                          ".violations.map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target).join(' '))",
                          WCAG_21_AA)
    return [f"{page.url}: {v}" for v in found]


def focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.tagName"))


def sign_in(page: Any, tally: ServedTally, user: str) -> None:
    page.goto(f"{tally.url}/signin?next=/pricing")
    page.get_by_label("User id").fill(user)
    page.get_by_label("Email").fill(f"{user}@example.com")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{tally.url}/pricing")


def test_a_failed_sign_in_puts_the_focus_on_the_missing_field(page: Any, served_tally: ServedTally,
                                                              axe_source: str) -> None:
    page.goto(f"{served_tally.url}/signin")
    page.get_by_label("Email").fill("someone@example.com")  # no user id
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    assert focused(page) == "user_id"
    assert violations(page, axe_source) == []
    page.goto(f"{served_tally.url}/admin/login")
    page.get_by_label("API key or admin token").fill("not-the-key")
    page.get_by_role("button", name="Sign in to the dashboard").click()
    page.get_by_role("alert").wait_for()
    assert focused(page) == "key"
    assert violations(page, axe_source) == []


def test_a_refused_card_puts_the_focus_on_the_problem(page: Any, served_tally: ServedTally,
                                                      axe_source: str) -> None:
    sign_in(page, served_tally, f"a11y-{uuid.uuid4().hex[:8]}")
    page.get_by_role("button", name="Buy Starter pack").click()
    page.wait_for_url(re.compile(re.escape(served_tally.sandbox.url) + r"/c/pay/cs_"))
    assert violations(page, axe_source) == []
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()  # nothing filled in
    page.locator('[aria-invalid="true"]').first.wait_for()
    assert focused(page) == page.locator('[aria-invalid="true"]').first.get_attribute("id")
    assert violations(page, axe_source) == []
    email = page.get_by_label("Email")
    if email.get_attribute("readonly") is None:
        email.fill("buyer@example.com")
    page.get_by_label("Card number").fill("4000 0000 0000 0002")  # declined
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.locator("#payment-alert").wait_for()
    assert focused(page) == "payment-alert"


def test_every_page_passes_axe(page: Any, served_tally: ServedTally, axe_source: str) -> None:
    found: list[str] = []
    for path in ("/", "/pricing", "/signin", "/checkout/cancel", "/outbox", "/admin/login"):
        page.goto(f"{served_tally.url}{path}")
        found += violations(page, axe_source)
    sign_in(page, served_tally, f"a11y-{uuid.uuid4().hex[:8]}")
    page.goto(f"{served_tally.url}/account")
    found += violations(page, axe_source)
    page.goto(f"{served_tally.url}/pricing")
    page.get_by_role("button", name=re.compile("^Subscribe to")).first.click()
    page.wait_for_url(re.compile(re.escape(served_tally.sandbox.url) + r"/c/pay/cs_"))
    found += violations(page, axe_source)
    assert found == []


def test_the_sandbox_hosted_pages_send_the_security_headers(served_tally: ServedTally) -> None:
    token = httpx.post(f"{served_tally.url}/dev/login", json={"user_id": "headers", "email": "h@example.com"}
                       ).json()["token"]
    order = httpx.post(f"{served_tally.url}/v1/checkout", json={"pack_id": "starter"}, timeout=30,
                       headers={"Authorization": f"Bearer {token}"}).json()
    hosted = httpx.get(order["checkout_url"], timeout=30)
    assert hosted.status_code == 200
    pages = httpx.get(f"{served_tally.url}/pricing", timeout=30)
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
        assert hosted.headers.get(name) == pages.headers.get(name), name
