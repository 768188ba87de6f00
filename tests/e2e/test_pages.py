"""Tally's own pages in a real browser (Debian's Chromium through Playwright), against ``tally serve`` on
the embedded defaults, as a developer first runs it: no database URL (embedded PostgreSQL in a fresh data
directory) and no Stripe key (the offline sandbox it starts). Sign in, buy, pay on the hosted Checkout page,
see the coins, the billing page, the PDF; a declined card; cancel; the currency switch; a subscription and
the billing portal; every page at phone width. Screenshots of each page go to tests/e2e/screenshots/
(git-ignored).

Every test here drives the browser only (and the sandbox's hosted pages), so none needs the API key or the
database: one ``tally serve`` process serves the whole module (``served_tally`` in conftest.py)."""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.served_tally import ServedTally
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, pay

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)]


@pytest.fixture(scope="module")
def tally(served_tally: ServedTally) -> Iterator[ServedTally]:
    """This module's Tally is ``tally serve`` (not the in-thread harness of the other suites)."""
    yield served_tally

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
PHONE = {"width": 390, "height": 844}


def new_user() -> str:
    return f"web-{uuid.uuid4().hex[:10]}"


def sign_in(page: Any, tally: Any, user: str, *, next_path: str = "/pricing") -> None:
    page.goto(f"{tally.url}/signin?next={next_path}")
    page.get_by_label("User id").fill(user)
    page.get_by_label("Email").fill(f"{user}@example.com")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{tally.url}{next_path}")
    assert page.get_by_test_id("signed-in").is_visible()


def fill_card(page: Any, number: str) -> None:
    """The sandbox's hosted Checkout form (the email is locked when the customer has one)."""
    email = page.get_by_label("Email")
    if email.get_attribute("readonly") is None:
        email.fill("buyer@example.com")
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at {PHONE['width']}px"


def balance_on_account_page(page: Any, tally: Any) -> int:
    page.goto(f"{tally.url}/account")
    return int(page.get_by_test_id("balance").inner_text().replace(",", ""))


def test_buy_the_second_pack_and_download_the_invoice(page: Any, tally: Any, screenshots: Path) -> None:
    page.goto(f"{tally.url}/")
    assert page.get_by_role("note").filter(has_text="Test mode — no real money").is_visible()
    assert page.get_by_role("heading", name="Buy credits").is_visible()
    page.screenshot(path=str(screenshots / "pages-pricing.png"), full_page=True)

    # Signed out, Buy leads to sign-in first, then back to pricing.
    page.get_by_role("button", name="Buy Plus pack").click()
    page.wait_for_url(re.compile(r"/signin\?next=/pricing$"))
    page.screenshot(path=str(screenshots / "pages-signin.png"), full_page=True)
    user = new_user()
    page.get_by_label("User id").fill(user)
    page.get_by_label("Email").fill(f"{user}@example.com")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{tally.url}/pricing")

    # The second pack of the catalog, on the sandbox's hosted Checkout page.
    page.get_by_role("button", name="Buy Plus pack").click()
    page.wait_for_url(re.compile(re.escape(tally.sandbox.url) + r"/c/pay/cs_"))
    fill_card(page, VISA)
    page.get_by_role("button", name="Pay $9.99").click()

    page.wait_for_url(re.compile(r"/checkout/success\?session_id=cs_"))
    page.get_by_test_id("coins-added").wait_for(timeout=15_000)  # after "Confirming payment…" if needed
    assert page.get_by_test_id("coins-added").inner_text() == "+1,100 coins"
    assert page.get_by_test_id("new-balance").inner_text() == "1,100"
    page.screenshot(path=str(screenshots / "pages-success.png"), full_page=True)

    page.get_by_role("link", name="Go to your account").click()
    page.wait_for_url(f"{tally.url}/account")
    assert page.get_by_test_id("balance").inner_text() == "1,100"
    transactions = page.get_by_role("region", name="Credit transactions")
    assert transactions.get_by_text("Plus pack (1000 coins + 100 bonus)").is_visible()
    assert transactions.get_by_text("+1,100").is_visible()
    invoices = page.get_by_role("region", name="Invoices")
    number = invoices.get_by_text(re.compile(r"^INV-\d{4}-\d{6}$")).inner_text()
    payments = page.get_by_role("region", name="Payment history")
    assert payments.get_by_text("Paid", exact=True).is_visible()
    page.screenshot(path=str(screenshots / "pages-account.png"), full_page=True)

    with page.expect_download() as download_info:
        invoices.get_by_role("link", name=re.compile("Download PDF")).click()
    download = download_info.value
    assert download.suggested_filename == f"{number}.pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(Path(download.path()).read_bytes())).pages)
    assert number in text and "9.99 USD" in text and "Status: Paid" in text


def test_currency_switch_shows_and_buys_in_euros(page: Any, tally: Any, screenshots: Path) -> None:
    sign_in(page, tally, new_user())
    switch = page.get_by_role("navigation", name="Currency")
    assert switch.get_by_role("link").all_inner_texts() == ["USD", "EUR", "GBP", "MYR", "SGD"]
    assert switch.get_by_role("link", name="USD").get_attribute("aria-current") == "true"
    switch.get_by_role("link", name="EUR").click()
    page.wait_for_url(re.compile(r"/pricing\?currency=eur"))
    assert page.get_by_test_id("price-plus").inner_text() == "€9.49"
    assert page.get_by_test_id("price-mega").inner_text() == "€92.99"
    page.screenshot(path=str(screenshots / "pages-pricing-eur.png"), full_page=True)

    page.get_by_role("button", name="Buy Plus pack").click()
    page.wait_for_url(re.compile(re.escape(tally.sandbox.url) + r"/c/pay/cs_"))
    fill_card(page, VISA)
    page.get_by_role("button", name="Pay €9.49").click()
    page.wait_for_url(re.compile(r"/checkout/success\?session_id=cs_"))
    page.get_by_test_id("coins-added").wait_for(timeout=15_000)
    assert page.get_by_test_id("coins-added").inner_text() == "+1,100 coins"

    page.goto(f"{tally.url}/account")
    invoices = page.get_by_role("region", name="Invoices")
    assert invoices.get_by_text("€9.49").is_visible() and invoices.get_by_text("EUR", exact=True).is_visible()
    with page.expect_download() as download_info:
        invoices.get_by_role("link", name=re.compile("Download PDF")).click()
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(Path(download_info.value.path()).read_bytes())).pages)
    assert "9.49 EUR" in text


def test_success_page_waits_for_the_payment_and_updates_by_itself(page: Any, tally: Any,
                                                                  screenshots: Path) -> None:
    """The success page trusts the server, not the redirect: opened before the payment exists it says
    "Confirming payment…", polls, and shows the coins once the payment is made."""
    sign_in(page, tally, new_user())
    page.get_by_role("button", name="Buy Starter pack").click()
    page.wait_for_url(re.compile(r"/c/pay/cs_"))
    session_id = page.url.rsplit("/", 1)[1]
    page.goto(f"{tally.url}/checkout/success?session_id={session_id}")
    assert page.get_by_role("heading", name="Confirming payment…").is_visible()
    page.screenshot(path=str(screenshots / "pages-success-confirming.png"), full_page=True)
    assert pay(tally, session_id).status_code == 303  # the buyer pays in another tab
    page.get_by_test_id("coins-added").wait_for(timeout=15_000)
    assert page.get_by_test_id("coins-added").inner_text() == "+500 coins"
    assert page.get_by_test_id("new-balance").inner_text() == "500"


def test_declined_card_shows_the_decline_and_adds_no_credits(page: Any, tally: Any, screenshots: Path) -> None:
    sign_in(page, tally, new_user())
    page.get_by_role("button", name="Buy Starter pack").click()
    page.wait_for_url(re.compile(r"/c/pay/cs_"))
    fill_card(page, DECLINED)
    page.get_by_role("button", name="Pay $4.99").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Your card was declined." in alert.inner_text()
    page.screenshot(path=str(screenshots / "pages-checkout-declined.png"), full_page=True)

    # The payment history shows the failed attempt and why (once the webhook has been processed).
    deadline = time.monotonic() + 15
    while balance_on_account_page(page, tally) == 0 and time.monotonic() < deadline:
        payments = page.get_by_role("region", name="Payment history")
        if payments.get_by_text("Your card was declined.").count():
            break
        time.sleep(0.3)
    payments = page.get_by_role("region", name="Payment history")
    assert payments.get_by_text("Failed", exact=True).is_visible()
    assert payments.get_by_text("Your card was declined.").is_visible()
    assert page.get_by_test_id("balance").inner_text() == "0"
    assert page.get_by_role("region", name="Invoices").get_by_text("No invoices yet", exact=False).is_visible()
    page.screenshot(path=str(screenshots / "pages-account-declined.png"), full_page=True)


def test_cancel_returns_to_pricing_with_nothing_charged(page: Any, tally: Any, screenshots: Path) -> None:
    sign_in(page, tally, new_user())
    page.get_by_role("button", name="Buy Pro pack").click()
    page.wait_for_url(re.compile(r"/c/pay/cs_"))
    page.get_by_role("link", name=re.compile("Back")).click()
    page.wait_for_url(re.compile(r"/checkout/cancel\?order_id="))
    assert page.get_by_role("heading", name="Checkout cancelled").is_visible()
    assert "Nothing was charged." in page.get_by_test_id("nothing-charged").inner_text()
    page.screenshot(path=str(screenshots / "pages-cancel.png"), full_page=True)
    page.get_by_role("link", name="Back to pricing").click()
    page.wait_for_url(f"{tally.url}/pricing")
    assert balance_on_account_page(page, tally) == 0
    assert page.get_by_role("region", name="Payment history").get_by_text("Not completed").is_visible()


def test_every_page_fits_a_phone_without_horizontal_scroll(browser: Any, tally: Any, screenshots: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{tally.url}/pricing")
        no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "pages-390-pricing.png"), full_page=True)
        page.goto(f"{tally.url}/signin")
        no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "pages-390-signin.png"), full_page=True)

        sign_in(page, tally, new_user() + "-with-a-rather-long-user-id-to-wrap")
        page.get_by_role("button", name="Buy Mega pack").click()
        page.wait_for_url(re.compile(r"/c/pay/cs_"))
        fill_card(page, VISA)
        page.get_by_role("button", name="Pay $99.99").click()
        page.wait_for_url(re.compile(r"/checkout/success"))
        page.get_by_test_id("coins-added").wait_for(timeout=15_000)
        no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "pages-390-success.png"), full_page=True)

        page.goto(f"{tally.url}/account")
        no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "pages-390-account.png"), full_page=True)

        page.goto(f"{tally.url}/checkout/cancel")
        no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "pages-390-cancel.png"), full_page=True)

        page.goto(f"{tally.url}/account/invoices/INV-1999-000001.pdf")
        assert page.get_by_role("heading", name="Invoice not found").is_visible()
        no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "pages-390-error.png"), full_page=True)
    finally:
        context.close()


def test_keyboard_reaches_buy_buttons_and_the_skip_link(page: Any, tally: Any) -> None:
    page.goto(f"{tally.url}/pricing")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    labels = []
    for _ in range(20):  # header links, the currency switch (five links), then the packs
        page.keyboard.press("Tab")
        labels.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert "Buy Starter pack" in labels and "Buy Plus pack" in labels


def test_tally_serve_on_the_embedded_defaults_opens_onto_the_pricing_page(
        page: Any, tally: ServedTally, screenshots: Path) -> None:
    """`tally serve` with no settings at all (embedded PostgreSQL, offline sandbox), in an empty directory."""
    printed = tally.printed()
    assert f"database: embedded PostgreSQL in {tally.data_dir / 'pg'}" in printed
    assert "stripe: offline sandbox at" in printed and "no Stripe account needed" in printed
    assert (tally.data_dir / "pg").is_dir()
    page.goto(tally.url)
    assert page.get_by_role("heading", name="Buy credits").is_visible()
    assert page.get_by_text("Test mode — no real money").is_visible()
    assert page.get_by_role("button", name=re.compile(r"^Buy ")).count() == 4
    page.screenshot(path=str(screenshots / "pages-tally-serve.png"), full_page=True)


def test_subscribe_to_an_annual_plan_then_cancel_it_in_the_billing_portal(page: Any, tally: Any,
                                                                           screenshots: Path) -> None:
    user = new_user()
    sign_in(page, tally, user)
    plans = page.get_by_role("region", name="Plans")
    plans.get_by_role("link", name="Annual").click()
    page.wait_for_url(re.compile(r"interval=year"))
    assert plans.get_by_test_id("plan-price-pro").inner_text() == "$290.00 / year"
    page.screenshot(path=str(screenshots / "pages-plans-annual.png"), full_page=True)

    plans.get_by_role("button", name="Subscribe to Pro").click()
    page.wait_for_url(re.compile(re.escape(tally.sandbox.url) + r"/c/pay/cs_"))
    fill_card(page, VISA)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(r"/account\?subscription=started"))
    for _ in range(30):  # the page says "Confirming…" until the webhook has been processed
        if page.get_by_test_id("subscription-status").count():
            break
        time.sleep(0.5)
        page.reload()
    subscription = page.get_by_role("region", name="Subscription")
    assert subscription.get_by_test_id("subscription-plan").inner_text() == "Pro · annual"
    assert subscription.get_by_text("Active").is_visible()
    assert page.get_by_test_id("balance").inner_text() == "48,000"
    # Stripe's invoice for the first year, beside Tally's own invoices, linking to its hosted page.
    invoices = page.get_by_role("region", name="Invoices")
    assert invoices.get_by_text("$290.00").is_visible()
    assert invoices.get_by_role("link", name=re.compile("View subscription invoice")).get_attribute(
        "href").startswith(tally.sandbox.url)
    page.screenshot(path=str(screenshots / "pages-account-subscription.png"), full_page=True)

    subscription.get_by_role("button", name="Manage billing").click()
    page.wait_for_url(re.compile(re.escape(tally.sandbox.url)))
    page.screenshot(path=str(screenshots / "pages-billing-portal.png"), full_page=True)
    page.get_by_role("link", name="Cancel plan").click()
    page.get_by_label("Why are you canceling? (optional)").select_option("too_expensive")
    page.get_by_role("button", name="Cancel plan").click()
    page.wait_for_url(re.compile(r"notice=canceled"))
    page.get_by_role("link", name=re.compile("Return to")).click()
    page.wait_for_url(f"{tally.url}/account")
    for _ in range(30):  # customer.subscription.updated reaches Tally through its webhook
        if page.get_by_text("Ends on").count():
            break
        time.sleep(0.5)
        page.reload()
    assert page.get_by_text("Cancelled: you keep access and credits until the end of the period.").is_visible()
