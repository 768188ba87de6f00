"""Checkout in any currency the catalog prices a pack in: ``POST /v1/checkout {pack_id, currency}`` and the
pricing page's currency switch. The amount is the catalog's price in that currency (through the pack's Stripe
Price for it), the order and its invoice record that amount and currency, the Checkout Session offers that
currency's payment methods, and a currency the pack is not priced in is a 400 that leaves nothing behind."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, new_user, pay, sdk, sql, wait_processed
from tests.integration.test_pages_http import csrf_of, signed_in

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def orders_of(tally: Any, user: str) -> list[tuple[Any, ...]]:
    return sql(tally, "SELECT pack_id, amount, currency, status FROM orders WHERE user_id = %s", user)


def test_buy_a_pack_in_eur_through_checkout_and_get_an_eur_invoice(tally: Any) -> None:
    user = new_user()
    with tally.client(user, f"{user}@example.com") as api:
        response = api.post("/v1/checkout", json={"pack_id": "plus", "currency": "EUR"})
        assert response.status_code == 200, response.text
        started = response.json()

        session = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"], params={"expand": ["line_items"]})
        assert (session.amount_total, session.currency) == (949, "eur")
        # EUR's methods from the catalog, not USD's.
        assert session.payment_method_types == ["card", "sepa_debit", "ideal", "bancontact"]
        price = session.line_items.data[0].price
        assert (price.unit_amount, price.currency, price.lookup_key) == (949, "eur", "tally_pack_plus_eur")

        assert pay(tally, started["session_id"]).status_code == 303
        wait_processed(tally, started["session_id"], "checkout.session.completed")
        order = api.get(f"/v1/orders/{started['order_id']}").json()
        assert (order["status"], order["amount"], order["currency"]) == ("paid", 949, "eur")
        assert order["coins_added"] == 1100 and order["balance"] == 1100  # the same pack, whatever the currency

        invoice = api.get("/v1/invoices").json()["data"][0]
        assert invoice["number"] == order["invoice_number"]
        assert (invoice["amount"], invoice["currency"]) == (949, "eur")
        assert (invoice["lines"][0]["unit_amount"], invoice["lines"][0]["currency"]) == (949, "eur")

    with signed_in(tally, user) as client:
        account = client.get("/account").text
        assert "€9.49" in account
        pdf = client.get(f"/account/invoices/{invoice['number']}.pdf")
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert invoice["number"] in text and "9.49 EUR" in text and "Currency: EUR" in text


def test_without_a_currency_checkout_sells_in_the_packs_own(tally: Any) -> None:
    with tally.client(new_user()) as api:
        started = api.post("/v1/checkout", json={"pack_id": "starter"}).json()
    session = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"])
    assert (session.amount_total, session.currency) == (499, "usd")
    assert session.payment_method_types == ["card", "us_bank_account", "alipay"]


def test_a_currency_the_pack_is_not_priced_in_is_a_400_and_nothing_is_kept(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as api:
        unpriced = api.post("/v1/checkout", json={"pack_id": "plus", "currency": "jpy"})
        assert unpriced.status_code == 400
        error = unpriced.json()["error"]
        assert error["param"] == "currency"
        assert error["message"] == "The plus pack is not sold in JPY; it is sold in USD, EUR, GBP, MYR, SGD."
        not_a_code = api.post("/v1/checkout", json={"pack_id": "plus", "currency": "e1r"})
        assert not_a_code.status_code == 400 and not_a_code.json()["error"]["param"] == "currency"
        too_long = api.post("/v1/checkout", json={"pack_id": "plus", "currency": "euro"})
        assert too_long.status_code == 400
        # The client still never names an amount.
        assert api.post("/v1/checkout", json={"pack_id": "plus", "currency": "eur", "amount": 1}).status_code == 400
    assert orders_of(tally, user) == []


def test_pricing_page_switches_currency_and_buys_in_it(tally: Any) -> None:
    with httpx.Client(base_url=tally.url, timeout=30) as anonymous:
        default = anonymous.get("/pricing").text
    switch = re.search(r'<nav class="currency-switch" aria-label="Currency">(.*?)</nav>', default, re.DOTALL)
    assert switch is not None, "the default catalog prices packs in five currencies: the page has a switch"
    assert re.findall(r'href="/pricing\?currency=(\w+)', switch.group(1)) == ["usd", "eur", "gbp", "myr", "sgd"]
    assert re.search(r'href="/pricing\?currency=usd[^"]*" aria-current="true"', switch.group(1))
    assert 'data-testid="price-plus">$9.99<' in default

    user = new_user()
    with signed_in(tally, user) as client:
        euros = client.get("/pricing", params={"currency": "eur"}).text
        for pack, price in (("starter", "€4.99"), ("plus", "€9.49"), ("pro", "€22.99"), ("mega", "€92.99")):
            assert f'data-testid="price-{pack}">{price}<' in euros, pack
        assert re.search(r'href="/pricing\?currency=eur[^"]*" aria-current="true"', euros)
        assert euros.count('name="currency" value="eur"') == 4  # every Buy buys in the chosen currency
        ringgit = client.get("/pricing", params={"currency": "MYR"}).text
        assert 'data-testid="price-plus">RM44.90<' in ringgit

        bought = client.post("/checkout", data={"pack_id": "plus", "currency": "eur", "csrf_token": csrf_of(client)})
        assert bought.status_code == 303 and bought.headers["location"].startswith(tally.sandbox.url)
        session = sdk(tally).v1.checkout.sessions.retrieve(bought.headers["location"].rsplit("/", 1)[-1])
        assert (session.amount_total, session.currency) == (949, "eur")

        refused = client.post("/checkout", data={"pack_id": "plus", "currency": "jpy", "csrf_token": csrf_of(client)})
        assert refused.status_code == 400 and "text/html" in refused.headers["content-type"]
        assert "not sold in JPY" in refused.text and "Traceback" not in refused.text
    assert orders_of(tally, user) == [("plus", 949, "eur", "pending")]
