"""Every card, test PaymentMethod and token of Stripe's testing guide, with its outcome; the README's table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import stripe

from stripe_sandbox import cards

ROOT = Path(__file__).resolve().parents[2]
NAMED = [(name, card) for name, card in cards.ALIASES.items() if name.startswith("pm_card_")]


def _pay(client: stripe.StripeClient, **params: Any) -> Any:
    """Confirm a PaymentIntent; the PaymentIntent, or the 402's error with the PaymentIntent it carries."""
    try:
        return client.v1.payment_intents.create(params={
            "amount": 2500, "currency": "usd", "payment_method_types": ["card"], "confirm": True,
            "return_url": "https://shop.example/back", **params})
    except stripe.CardError as declined:
        return declined


@pytest.mark.parametrize(("alias", "decline_code"), [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "stolen_card"),
    ("tok_chargeDeclined", "generic_decline"),
])
def test_the_older_decline_aliases_decline_as_documented(stripe_client: stripe.StripeClient, alias: str,
                                                         decline_code: str) -> None:
    if alias.startswith("tok_"):
        outcome = _pay(stripe_client, payment_method_data={"type": "card", "card": {"token": alias}})
    else:
        outcome = _pay(stripe_client, payment_method=alias)
    assert isinstance(outcome, stripe.CardError), outcome
    assert (outcome.code, outcome.error.decline_code, outcome.http_status) == ("card_declined", decline_code, 402)


@pytest.mark.parametrize(("alias", "card"), NAMED, ids=[name for name, _ in NAMED])
def test_every_test_payment_method_pays_as_its_card_says(stripe_client: stripe.StripeClient, alias: str,
                                                        card: cards.TestCard) -> None:
    outcome = _pay(stripe_client, payment_method=alias)
    if card.decline is not None and card.three_d_secure is None:
        assert isinstance(outcome, stripe.CardError), outcome
        assert (outcome.code, outcome.error.decline_code) == (card.decline.code, card.decline.decline_code)
        charge = stripe_client.v1.charges.retrieve(outcome.json_body["error"]["charge"])
        assert charge.outcome.type == ("blocked" if card.blocked else "issuer_declined")
        assert charge.outcome.risk_level == card.risk_level
        return
    assert not isinstance(outcome, stripe.CardError), outcome
    if card.three_d_secure is not None:
        assert outcome.status == "requires_action" and outcome.next_action.type == "redirect_to_url"
        return
    assert outcome.status == "succeeded"
    charge = stripe_client.v1.charges.retrieve(outcome.latest_charge)
    details = charge.payment_method_details.card
    assert (details.brand, details.funding, details.country, details.last4) == (
        card.brand, card.funding, card.country, card.last4)
    assert charge.outcome.risk_level == card.risk_level
    assert details.checks.cvc_check == card.cvc_check
    assert details.checks.address_postal_code_check == card.address_postal_code_check
    assert charge.disputed == card.disputed


@pytest.mark.parametrize("number", [card.number for card, names in cards.table() if not names])
def test_every_number_without_a_name_is_accepted_as_a_card(stripe_client: stripe.StripeClient,
                                                           number: str) -> None:
    card = cards.BY_NUMBER[number]
    cvc = "1234" if card.brand == "amex" else "123"  # American Express has four digits
    pm = stripe_client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": cvc}})
    assert (pm.card.brand, pm.card.last4, pm.card.funding, pm.card.country) == (
        card.brand, number[-4:], card.funding, card.country)
    assert _pay(stripe_client, payment_method=pm.id).status == "succeeded"


def test_an_inquiry_card_opens_an_inquiry_that_moves_no_money(stripe_client: stripe.StripeClient) -> None:
    pi = _pay(stripe_client, payment_method="pm_card_createDisputeInquiry")
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": pi.id}).data
    assert dispute.status == "warning_needs_response" and dispute.balance_transactions == []
    assert dispute.payment_method_details.card.case_type == "inquiry" and dispute.is_charge_refundable is True
    product = _pay(stripe_client, payment_method="pm_card_createDisputeProductNotReceived")
    (chargeback,) = stripe_client.v1.disputes.list(params={"payment_intent": product.id}).data
    assert (chargeback.reason, chargeback.network_reason_code) == ("product_not_received", "13.1")


def test_every_alias_has_both_forms_and_every_number_passes_luhn() -> None:
    names = {name.removeprefix("pm_card_") for name in cards.ALIASES if name.startswith("pm_card_")}
    assert names == {name.removeprefix("tok_") for name in cards.ALIASES if name.startswith("tok_")}
    assert all(cards.luhn_valid(card.number) for card, _ in cards.table())


def test_the_readme_table_is_the_sandboxs_own() -> None:
    checked = subprocess.run([sys.executable, "scripts/test_cards_table.py", "--check"], cwd=ROOT,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
