"""Payment methods per currency: the catalog's lists with the issue's defaults, the rules every order obeys
(one currency, only its methods, one-time-only methods never for recurring prices, Sofort gone), over HTTP
and in the catalog file."""

from __future__ import annotations

from typing import Any

import pytest

from tally.catalog.payment_methods import PaymentMethodError, check_methods
from tally.catalog.service import CatalogError, parse_catalog
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, checkout, new_user, sdk

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

DEFAULTS = {
    "myr": ["card", "fpx", "grabpay", "alipay"],
    "usd": ["card", "us_bank_account", "alipay"],
    "eur": ["card", "sepa_debit", "ideal", "bancontact"],
    "gbp": ["card", "bacs_debit"],
    "sgd": ["card", "grabpay", "paynow"],
}
ONE_TIME_ONLY = {"alipay", "grabpay", "fpx", "paynow"}
PACK = '[[packs]]\nid = "p"\nname = "P"\namount = 499\ncurrency = "usd"\ncoins = 500\n'


@pytest.mark.parametrize("currency", sorted(DEFAULTS))
def test_payment_methods_per_currency(tally: Any, currency: str) -> None:
    with tally.client(new_user()) as client:
        response = client.get("/v1/payment-methods", params={"currency": currency.upper()})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "currency": currency, "payment_method_types": DEFAULTS[currency],
        "recurring_payment_method_types": [m for m in DEFAULTS[currency] if m not in ONE_TIME_ONLY]}


def test_unlisted_currency_gets_cards_and_bad_currencies_are_400(tally: Any) -> None:
    with tally.client(new_user()) as client:
        assert client.get("/v1/payment-methods?currency=chf").json()["payment_method_types"] == ["card"]
        for query in ("?currency=dollars", "?currency=1x3", ""):
            response = client.get("/v1/payment-methods" + query)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["param"] == "currency"


def test_catalog_in_another_currency(tally: Any) -> None:
    with tally.client(new_user()) as client:
        myr = client.get("/v1/catalog", params={"currency": "myr"}).json()["packs"]
        jpy = client.get("/v1/catalog", params={"currency": "jpy"}).json()["packs"]
    assert [(p["id"], p["amount"], p["currency"]) for p in myr][:2] == [("starter", 2290, "myr"), ("plus", 4490, "myr")]
    assert jpy == []  # the default packs are not sold in yen


def test_checkout_offers_the_currency_methods(tally: Any) -> None:
    with tally.client(new_user()) as client:
        started = checkout(client, "starter")
    session = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"])
    assert session.payment_method_types == DEFAULTS["usd"]


def test_an_order_refuses_methods_its_currency_does_not_allow(tally: Any) -> None:
    with tally.client(new_user()) as client:
        order = client.post("/v1/orders", json={"pack_id": "starter", "currency": "eur"}).json()
        refused = client.post(f"/v1/orders/{order['order_id']}/payment-intent",
                              json={"payment_method_types": ["card", "grabpay"]})
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["param"] == "payment_method_types"
        assert error["message"] == "grabpay is not offered for EUR; allowed: card, sepa_debit, ideal, bancontact."
        sofort = client.post(f"/v1/orders/{order['order_id']}/payment-intent",
                             json={"payment_method_types": ["sofort"]})
        assert sofort.status_code == 400 and "Stripe retired it in 2025" in sofort.json()["error"]["message"]
        confirm = client.post(f"/v1/orders/{order['order_id']}/confirm",
                              json={"payment_method_type": "sofort", "return_url": "https://shop.example/back"})
        assert confirm.status_code == 400 and "Stripe retired it in 2025" in confirm.json()["error"]["message"]
        # Nothing was created in Stripe by the refused requests.
        assert client.get(f"/v1/orders/{order['order_id']}").json()["payment_intent_id"] is None


def test_one_time_only_methods_refused_for_recurring_prices() -> None:
    configured = {"myr": DEFAULTS["myr"]}
    assert check_methods(configured, "myr", ["card"], recurring=True) == ["card"]
    for method in ("grabpay", "fpx", "alipay"):
        with pytest.raises(PaymentMethodError, match=f"{method} can only pay once"):
            check_methods(configured, "myr", ["card", method], recurring=True)
    with pytest.raises(PaymentMethodError, match="paynow can only pay once"):
        check_methods({}, "sgd", ["paynow"], recurring=True)
    assert check_methods({}, "sgd", ["paynow", "card", "paynow"]) == ["paynow", "card"]


def test_catalog_file_rules() -> None:
    with pytest.raises(CatalogError, match="Sofort no longer exists: Stripe retired it in 2025"):
        parse_catalog(PACK + '[payment_methods]\neur = ["card", "sofort"]\n')
    catalog = parse_catalog(PACK + 'prices = { EUR = 459, myr = 2290 }\n[payment_methods]\nmyr = ["card", "FPX"]\n')
    pack = catalog.packs["p"]
    assert pack.prices == {"eur": 459, "myr": 2290} and pack.currencies == ["usd", "eur", "myr"]
    assert (pack.amount_in("usd"), pack.amount_in("myr"), pack.amount_in("gbp")) == (499, 2290, None)
    assert catalog.payment_method_types("myr") == ["card", "fpx"]  # the file wins over the defaults
    assert catalog.payment_method_types("gbp") == ["card", "bacs_debit"]  # not in the file: the defaults
    for bad, message in (('prices = { eur = 4.5 }\n', r"prices\.eur: Input should be a valid integer"),
                         ('prices = { kwd = 4995 }\n', "divisible"), ('prices = { usd = 500 }\n', "contradicts"),
                         ('prices = 3\n', r"packs\[0\] \(p\)\.prices: Input should be a valid dictionary")):
        with pytest.raises(CatalogError, match=message):
            parse_catalog(PACK + bad)


def test_subscription_checkout_offers_only_methods_that_can_pay_again(tally: Any) -> None:
    """USD's defaults include Alipay, which can pay only once: a plan's Checkout leaves it out (and keeps the
    rest of the currency's list), so no subscriber is signed up with a method that cannot renew."""
    with tally.client(new_user()) as client:
        started = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic", "interval": "month"})
        assert started.status_code == 200, started.text
    session = sdk(tally).v1.checkout.sessions.retrieve(started.json()["session_id"])
    assert session.mode == "subscription"
    assert session.payment_method_types == [m for m in DEFAULTS["usd"] if m not in ONE_TIME_ONLY]
