"""The web pages over plain HTTP (no browser): CSRF refusal, cookie flags, sign-in redirects, security
headers, error pages in words, the invoice PDF and who may download it. Against the real Tally + sandbox."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from starlette.responses import Response

from tally.catalog.service import parse_catalog
from tally.pages.pricing import display_price, pricing_view
from tally.pages.session import COOKIE, PageSession, SessionCodec
from tests.integration.purchase_flow import (DECLINED, STRIPE_HTTPX_WARNING, checkout, new_user, order_row, pay,
                                             sql, wait_until)
from tests.integration.subscription_flow import T0, add_months, clock_user

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(tally: Any) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects (we check where they point)."""
    return httpx.Client(base_url=tally.url, timeout=30)


def csrf_of(client: httpx.Client, path: str = "/pricing") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match, "the page has no CSRF field"
    return match.group(1)


@contextmanager
def signed_in(tally: Any, user: str) -> Iterator[httpx.Client]:
    """Sign in the way an app does it: redirect with the user's JWT to /signin/token."""
    with browser(tally) as client:
        response = client.get("/signin/token", params={"token": tally.token(user, f"{user}@example.com"),
                                                       "next": "/account"})
        assert response.status_code == 303 and response.headers["location"] == "/account"
        yield client


def orders_of(tally: Any, user: str) -> int:
    return int(sql(tally, "SELECT count(*) FROM orders WHERE user_id = %s", user)[0][0])


# -- headers and cookies --------------------------------------------------------------------------
def test_pricing_page_has_security_headers_and_a_safe_session_cookie(tally: Any) -> None:
    with browser(tally) as client:
        response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # the test server's public URL is http
    # What the page shows: the test-mode banner, four packs, the bonus and the best-value badge.
    text = response.text
    assert "Test mode — no real money" in text
    assert text.count("Buy ") >= 4 and "+100 bonus" in text and "Best value" in text
    assert 'href="/assets/tally.css"' in text and "<script>" not in text  # CSP: no inline script


def test_secure_flag_when_the_public_url_is_https() -> None:
    codec = SessionCodec(b"k" * 32, secure=True)
    response = Response()
    codec.write(response, PageSession())
    assert "Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]


def test_a_tampered_session_cookie_reads_as_signed_out() -> None:
    codec = SessionCodec(b"k" * 32, secure=False)
    good = codec.dumps(PageSession(jwt="a.b.c", csrf="nonce"))
    assert codec.loads(good).jwt == "a.b.c"
    payload, _, signature = good.rpartition(".")
    forged = codec.dumps(PageSession(jwt="x.y.z", csrf="nonce")).rpartition(".")[0] + "." + signature
    assert codec.loads(forged).jwt is None
    assert codec.loads("garbage").jwt is None and codec.loads(None).jwt is None
    assert SessionCodec(b"other" * 8, secure=False).loads(good).jwt is None


def test_assets_are_served_by_tally(tally: Any) -> None:
    with browser(tally) as client:
        assert client.get("/assets/tally.css").status_code == 200
        js = client.get("/assets/tally.js")
    assert js.status_code == 200 and "data-poll" in js.text


# -- CSRF -----------------------------------------------------------------------------------------
def test_post_without_a_valid_csrf_token_is_refused_with_a_403_page(tally: Any) -> None:
    user = new_user()
    with signed_in(tally, user) as client:
        token = csrf_of(client)
        for data in ({"pack_id": "plus"}, {"pack_id": "plus", "csrf_token": "forged"},
                     {"pack_id": "plus", "csrf_token": token + "x"}):
            refused = client.post("/checkout", data=data)
            assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
            assert "This form has expired" in refused.text and "Traceback" not in refused.text
        assert client.post("/signout", data={}).status_code == 403
        assert orders_of(tally, user) == 0
        # A token from another visitor's session is refused too: it is bound to this session's cookie.
        with browser(tally) as other:
            assert client.post("/checkout", data={"pack_id": "plus", "csrf_token": csrf_of(other)}).status_code == 403
        # With the right token, the order is made and the browser is sent to Checkout.
        accepted = client.post("/checkout", data={"pack_id": "plus", "csrf_token": token})
        assert accepted.status_code == 303 and accepted.headers["location"].startswith(tally.sandbox.url)
        assert orders_of(tally, user) == 1


def test_demo_sign_in_needs_the_csrf_token_and_renews_it(tally: Any) -> None:
    with browser(tally) as client:
        before = csrf_of(client, "/signin")
        assert client.post("/signin", data={"user_id": "u", "email": "u@example.com"}).status_code == 403
        response = client.post("/signin", data={"user_id": new_user(), "email": "ada@example.com",
                                                "csrf_token": before, "next": "/account"})
        assert response.status_code == 303 and response.headers["location"] == "/account"
        assert "HttpOnly" in response.headers["set-cookie"]
        after = csrf_of(client, "/account")
        assert after != before  # a nonce seen while signed out does not carry over
        assert "ada@example.com" in client.get("/account").text


def test_demo_sign_in_shows_field_errors(tally: Any) -> None:
    with browser(tally) as client:
        token = csrf_of(client, "/signin")
        response = client.post("/signin", data={"user_id": "", "email": "not-an-email", "csrf_token": token})
    assert response.status_code == 400
    assert "Enter a user id." in response.text and "Enter a valid email address" in response.text
    assert 'aria-invalid="true"' in response.text


# -- sign-in redirects ----------------------------------------------------------------------------
def test_signed_out_users_are_sent_to_sign_in_first(tally: Any) -> None:
    with browser(tally) as client:
        for path in ("/account", "/checkout/success?session_id=cs_test_x"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/signin?next=")
        assert client.get("/account").headers["location"] == "/signin?next=/account"
        buy = client.post("/checkout", data={"pack_id": "plus", "csrf_token": csrf_of(client)})
        assert buy.status_code == 303 and buy.headers["location"] == "/signin?next=/pricing"


def test_signin_token_verifies_the_jwt_and_refuses_open_redirects(tally: Any) -> None:
    with browser(tally) as client:
        bad = client.get("/signin/token", params={"token": "not-a-jwt", "next": "/account"})
        assert bad.status_code == 401 and "The sign-in link did not work" in bad.text
        assert "set-cookie" not in bad.headers or "eyJqd3QiOm51bGw" in bad.headers["set-cookie"]
        for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            response = client.get("/signin/token", params={"token": tally.token(new_user()), "next": evil})
            assert response.status_code == 303 and response.headers["location"] == "/pricing"


def test_sign_out_forgets_the_user(tally: Any) -> None:
    with signed_in(tally, new_user()) as client:
        token = csrf_of(client, "/account")
        assert client.post("/signout", data={"csrf_token": token}).status_code == 303
        assert client.get("/account").status_code == 303


# -- errors in words; the JSON API keeps JSON -----------------------------------------------------
def test_page_errors_are_html_in_plain_words_and_api_errors_stay_json(tally: Any) -> None:
    with signed_in(tally, new_user()) as client:
        page = client.get("/checkout/success", params={"session_id": "cs_test_unknown"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Not found" in page.text and "Traceback" not in page.text
        assert client.get("/account?tx=abc").status_code == 400
        assert client.get("/checkout/success").status_code == 400
    with tally.client(new_user()) as api:
        response = api.get("/v1/orders/cs_test_unknown")
        assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


def test_another_users_order_is_not_shown(tally: Any) -> None:
    owner = new_user()
    with tally.client(owner) as api:
        started = checkout(api, "starter")
    with signed_in(tally, new_user()) as intruder:
        response = intruder.get("/checkout/success", params={"session_id": started["session_id"]})
    assert response.status_code == 403 and "another account" in response.text


# -- buying, history, the PDF ---------------------------------------------------------------------
def test_paid_order_shows_on_success_and_account_pages_and_the_pdf_is_the_owners(tally: Any) -> None:
    user = new_user()
    with tally.client(user, f"{user}@example.com") as api:
        started = checkout(api, "plus")
    assert pay(tally, started["session_id"]).status_code == 303
    with signed_in(tally, user) as client:
        success = client.get("/checkout/success", params={"session_id": started["session_id"]})
        assert success.status_code == 200
        assert "+1,100 coins" in success.text and 'data-testid="new-balance">1,100<' in success.text
        status = client.get("/checkout/status", params={"session_id": started["session_id"]}).json()
        assert status == {"status": "paid", "done": True, "coins_added": 1100, "balance": 1100}

        account = client.get("/account").text
        number = re.search(r"INV-\d{4}-\d{6}", account).group(0)  # type: ignore[union-attr]
        assert 'data-testid="balance">1,100<' in account and "Plus pack" in account and "$9.99" in account

        pdf = client.get(f"/account/invoices/{number}.pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert f'filename="{number}.pdf"' in pdf.headers["content-disposition"]
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        for expected in (number, "9.99 USD", "Tally Demo", "Ada Lovelace", "Status: Paid", "Plus pack"):
            assert expected in text, expected

    # Anyone else gets the same 404 as for a number that does not exist.
    with signed_in(tally, new_user()) as other:
        for path in (f"/account/invoices/{number}.pdf", "/account/invoices/INV-1999-000001.pdf"):
            response = other.get(path)
            assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    with browser(tally) as anonymous:
        assert anonymous.get(f"/account/invoices/{number}.pdf").status_code == 303


def test_declined_attempt_is_listed_with_its_reason(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as api:
        started = checkout(api, "starter")
    pay(tally, started["session_id"], card=DECLINED)
    wait_until(lambda: order_row(tally, started["order_id"])["status"] == "failed", "order failed")
    with signed_in(tally, user) as client:
        account = client.get("/account").text
        assert "Failed" in account and "Your card was declined." in account
        assert 'data-testid="balance">0<' in account
        success = client.get("/checkout/success", params={"session_id": started["session_id"]})
        assert "The payment did not go through" in success.text and "Nothing was charged." in success.text


def test_cancel_page_says_nothing_was_charged(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as api:
        started = checkout(api, "starter")
    with signed_in(tally, user) as client:
        page = client.get("/checkout/cancel", params={"order_id": started["order_id"]})
    assert page.status_code == 200 and "Nothing was charged." in page.text and "still 0 coins" in page.text


def test_transactions_are_paginated_with_the_ledger_cursor(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as api:
        for _ in range(12):  # more than one page of 10 transactions (and of invoices)
            started = checkout(api, "starter")
            pay(tally, started["session_id"])
            api.get(f"/v1/orders/{started['order_id']}")  # fulfils on read
    with signed_in(tally, user) as client:
        first = client.get("/account").text
        assert first.count('data-label="Coins"') == 10
        cursor = re.search(r'href="/account\?tx=(\d+)#transactions" rel="next"', first).group(1)  # type: ignore[union-attr]
        second = client.get(f"/account?tx={cursor}").text
        assert second.count('data-label="Coins"') == 2 and "Newest" in second and "Older transactions" not in second
        invoices = re.search(r'href="/account\?inv=([\w.]+)&amp;tx=(\d+)#invoices" rel="next"', second)
        assert invoices is not None and invoices.group(2) == cursor  # each list keeps the other's page
        third = client.get(f"/account?inv={invoices.group(1)}").text
        assert third.count("Download PDF</a>") == 2
        assert client.get("/account", params={"inv": "12.x.1"}).status_code == 400  # not a cursor of ours


# -- pricing view ---------------------------------------------------------------------------------
def test_pricing_view_best_value_and_currency_switch() -> None:
    catalog = parse_catalog("""
[[packs]]
id = "small"
name = "Small"
amount = 500
currency = "usd"
coins = 500
[[packs]]
id = "big"
name = "Big"
amount = 2000
currency = "usd"
coins = 2000
bonus = 400
[[packs]]
id = "yen"
name = "Yen pack"
amount = 800
currency = "jpy"
coins = 500
""")
    view = pricing_view(catalog)
    assert view.currency == "usd" and view.currencies == ["usd", "jpy"]
    assert [(c.id, c.price, c.best_value) for c in view.cards] == [("small", "$5.00", False), ("big", "$20.00", True)]
    yen = pricing_view(catalog, "JPY")
    assert [(c.id, c.price, c.best_value) for c in yen.cards] == [("yen", "¥800", False)]  # one pack: no badge
    assert pricing_view(catalog, "xxx").currency == "usd"
    assert display_price(1234, "chf") == "12.34 CHF" and display_price(123456, "usd") == "$1,234.56"


def test_stripe_unreachable_is_a_503_page_in_plain_words_and_nothing_is_kept(database_url: str) -> None:
    from tests.tally_harness import TallyServer

    with TallyServer(database_url, run_worker=False) as tally:
        user = new_user()
        with signed_in(tally, user) as client:
            token = csrf_of(client)
            tally.sandbox.stop()  # Stripe goes away
            response = client.post("/checkout", data={"pack_id": "plus", "csrf_token": token})
        assert response.status_code == 503 and response.headers["content-type"].startswith("text/html")
        assert "could not reach the payment provider" in response.text and "Nothing was charged" in response.text
        assert "Traceback" not in response.text and "stripe" not in response.text.split("<main", 1)[1].split(
            "</main>")[0].lower()
        assert orders_of(tally, user) == 0


def test_with_a_real_key_sign_in_explains_the_token_redirect_and_refuses_the_demo(database_url: str) -> None:
    from tests.tally_harness import TallyServer

    # A Stripe key turns sandbox mode off (the client still talks to the harness's sandbox).
    with TallyServer(database_url, run_worker=False, STRIPE_SECRET_KEY="sk_test_pages") as tally:
        with browser(tally) as client:
            page = client.get("/signin")
            assert page.status_code == 200 and "/signin/token?token=" in page.text
            assert 'name="user_id"' not in page.text and "Test mode" not in page.text
            refused = client.post("/signin", data={"user_id": "u", "csrf_token": csrf_of(client)})
            assert refused.status_code == 403 and "Demo sign-in is off" in refused.text
            user = new_user()
            assert client.get("/signin/token", params={"token": tally.token(user), "next": "/account"}
                              ).status_code == 303
            assert client.get("/account").status_code == 200


# -- plans ----------------------------------------------------------------------------------------
def test_pricing_shows_plans_with_a_monthly_and_annual_switch(tally: Any) -> None:
    with browser(tally) as client:
        monthly = client.get("/pricing").text
        annual = client.get("/pricing", params={"interval": "year"}).text
    assert 'data-testid="plan-price-basic">$9.00 <span class="per">/ month' in monthly
    assert "1,000</strong> credits every month" in monthly and "Priority queue" in monthly
    assert 'href="/pricing?interval=year' in monthly and "Subscribe to Pro" in monthly
    # $90 a year for twelve payments of $9: a 16 % saving, $7.50 a month.
    assert 'data-testid="plan-price-basic">$90.00 <span class="per">/ year' in annual
    assert "$7.50 a month" in annual and "Save 16%" in annual and "12,000</strong> credits every year" in annual
    assert 'name="interval" value="year"' in annual


def test_subscribe_from_the_pricing_page_switch_plan_then_manage_billing(tally: Any) -> None:
    user = new_user()
    with signed_in(tally, user) as client:
        token = csrf_of(client)
        refused = client.post("/subscribe", data={"plan_id": "basic", "interval": "year"})
        assert refused.status_code == 403  # no CSRF token
        assert client.post("/subscribe", data={"plan_id": "gold", "csrf_token": token}).status_code == 400
        started = client.post("/subscribe", data={"plan_id": "basic", "interval": "year", "csrf_token": token})
        assert started.status_code == 303 and started.headers["location"].startswith(tally.sandbox.url)
        session_id = started.headers["location"].rsplit("/", 1)[-1]
        assert pay(tally, session_id).status_code in (200, 303)
        # The subscription's events and its paid invoice's (the credits) are processed in any order: wait for both.
        wait_until(lambda: all(part in client.get("/account").text for part in (
            "Active", "Email support", 'data-testid="balance">12,000<')), "the subscription and its credits")
        account = client.get("/account").text
        assert 'data-testid="subscription-plan">Basic · annual<' in account and "Renews on" in account
        assert "Email support" in account and 'data-testid="balance">12,000<' in account

        pricing = client.get("/pricing", params={"interval": "year"}).text
        assert "Your plan" in pricing and "Subscribe to" not in pricing  # one subscription per user
        assert "Switch to Pro" in pricing
        switched = client.post("/subscription/change", data={"plan_id": "pro", "interval": "year",
                                                              "csrf_token": csrf_of(client)})
        assert switched.status_code == 303 and switched.headers["location"].startswith("/account?subscription=changed")
        account = client.get(switched.headers["location"]).text
        assert "Your plan was changed." in account and 'data-testid="subscription-plan">Pro · annual<' in account
        # Upgraded at once: the prorated share of the 36,000 extra credits a year, granted when the
        # proration invoice is paid (a few seconds into the year: almost all of it).
        wait_until(lambda: int(re.search(r'data-testid="balance">([\d,]+)<', client.get("/account").text)
                               .group(1).replace(",", "")) > 12_000 + 35_000, "the upgrade's credits")

        portal = client.post("/account/billing", data={"csrf_token": csrf_of(client, "/account")})
        assert portal.status_code == 303 and portal.headers["location"].startswith(tally.sandbox.url)
    page = httpx.get(portal.headers["location"], follow_redirects=True)
    assert page.status_code == 200 and f"{tally.url}/account" in page.text


def test_account_without_a_subscription_points_to_the_plans(tally: Any) -> None:
    with signed_in(tally, new_user()) as client:
        account = client.get("/account").text
        assert "No subscription." in account and "Manage billing" not in account
        started = client.get("/account", params={"subscription": "started"}).text
        assert "Confirming your subscription" in started


# -- subscriptions on the billing page -----------------------------------------------------------------
def test_billing_page_lists_subscription_invoices_and_failed_renewals_with_their_reason(tally: Any) -> None:
    """On a test clock: the first period is paid, the renewal is declined (past due), then the customer pays
    the open invoice with a good card. The account page lists Stripe's subscription invoices beside Tally's
    own, and the failed renewal attempt, with the decline's words, in the payment history."""
    user = clock_user(tally)
    user.subscribe("basic", "month")
    user.wait_balance(1000)
    user.use_card("pm_card_chargeCustomerFail")
    user.advance(add_months(T0, 1) + 7200)  # the renewal is charged at finalization (+1 h): declined
    user.wait_subscription("past_due", lambda s: s["status"] == "past_due")
    user.idle()
    first, renewal = user.invoices()
    assert first["status"] == "paid" and renewal["status"] == "open"

    with signed_in(tally, user.user_id) as client:
        account = client.get("/account").text
        invoices = account.split('id="inv-title"', 1)[1]
        assert invoices.count('class="invoice-subscription"') == 1  # only paid invoices are recorded
        row = invoices.split('class="invoice-subscription"', 1)[1].split("</tr>", 1)[0]
        assert f">{first['number']}<" in row and "$9.00" in row and ">USD<" in row and ">Paid<" in row
        assert f'href="{first["hosted_invoice_url"]}"' in row and "View invoice" in row
        payments = account.split('id="payments-title"', 1)[1].split("</section>", 1)[0]
        failed = payments.split('class="order-failed"', 1)[1].split("</tr>", 1)[0]
        assert f"Subscription renewal ({renewal['number']})" in failed and "$9.00" in failed
        assert "Failed" in failed and "Your card was declined." in failed and "Stripe retries on" in failed
        paid = payments.split('class="order-paid"', 1)[1].split("</tr>", 1)[0]
        assert f"First subscription payment ({first['number']})" in paid and "$9.00" in paid

        good = user.use_card("pm_card_visa")
        user.stripe.v1.invoices.pay(renewal["id"], params={"payment_method": good})
        user.wait_balance(2000)
        user.idle()
        account = client.get("/account").text
        invoices = account.split('id="inv-title"', 1)[1]
        numbers = re.findall(r'class="invoice-subscription">\s*<td data-label="Number">([^<]+)<', invoices)
        assert numbers == [renewal["number"], first["number"]]  # newest first
        payments = account.split('id="payments-title"', 1)[1].split("</section>", 1)[0]
        assert payments.count('class="order-failed"') == 1  # the failed attempt stays in the history
        assert payments.count('class="order-paid"') == 2  # the first period and the renewal, paid at last

    # Another user sees none of it.
    with signed_in(tally, new_user()) as other:
        account = other.get("/account").text
        assert renewal["number"] not in account and "No payments yet." in account
