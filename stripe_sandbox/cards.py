"""Stripe's test cards: number -> brand, funding, and what happens when it is charged.

Only these numbers are accepted, as Stripe refuses real card numbers in test mode. Test PaymentMethod ids
(``pm_card_visa``) and tokens (``tok_visa``) name a card of this table. Cards are also found again by their
fingerprint, so a stored PaymentMethod needs no hidden field to know how its charges behave.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

# Stripe's decline messages (error ``message`` and charge ``failure_message``).
DECLINED = "Your card was declined."
MESSAGES = {
    "generic_decline": DECLINED,
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": DECLINED,
    "stolen_card": DECLINED,
    "card_velocity_exceeded": DECLINED,
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
    "test_mode_live_card": "Your card was declined. Your request was in test mode, but used a non test (live) "
                           "card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
}


@dataclass(frozen=True)
class Decline:
    """How a charge fails: error ``code``, issuer ``decline_code`` and the message shown to the payer."""

    code: str
    decline_code: str

    @property
    def message(self) -> str:
        return MESSAGES[self.decline_code]


def declined(decline_code: str) -> Decline:
    return Decline("card_declined", decline_code)


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None  # every charge fails this way
    # 3-D Secure: None (never), "on_session" (only without a prior off-session setup), "always"
    three_d_secure: str | None = None
    decline_after_authentication: Decline | None = None
    refund_fails: bool = False
    disputed: bool = False  # every captured charge is charged back (a ``fraudulent`` dispute)

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.number)


@cache
def fingerprint(value: str) -> str:
    """Stripe's fingerprints are stable per account number; a hash gives the same property (cached: the
    test numbers are few and every charge reads one)."""
    digest = hashlib.sha256(b"sandbox-fingerprint:" + value.encode()).hexdigest()
    return "".join(c for c in digest if c.isalnum())[:16]


_CARDS: list[tuple[TestCard, tuple[str, ...]]] = [
    (TestCard("4242424242424242", "visa"), ("visa",)),
    (TestCard("4000056655665556", "visa", "debit"), ("visa_debit",)),
    (TestCard("5555555555554444", "mastercard"), ("mastercard",)),
    (TestCard("378282246310005", "amex"), ("amex",)),
    (TestCard("4000000000000002", "visa", decline=declined("generic_decline")), ("visa_chargeDeclined",)),
    (TestCard("4000000000009995", "visa", decline=declined("insufficient_funds")),
     ("visa_chargeDeclinedInsufficientFunds",)),
    (TestCard("4000000000009987", "visa", decline=declined("lost_card")), ("visa_chargeDeclinedLostCard",)),
    (TestCard("4000000000009979", "visa", decline=declined("stolen_card")), ("visa_chargeDeclinedStolenCard",)),
    (TestCard("4000000000000069", "visa", decline=Decline("expired_card", "expired_card")),
     ("chargeDeclinedExpiredCard",)),
    (TestCard("4000000000000127", "visa", decline=Decline("incorrect_cvc", "incorrect_cvc")),
     ("chargeDeclinedIncorrectCvc",)),
    (TestCard("4000000000000119", "visa", decline=Decline("processing_error", "processing_error")),
     ("chargeDeclinedProcessingError",)),
    (TestCard("4000000000006975", "visa", decline=declined("card_velocity_exceeded")),
     ("visa_chargeDeclinedVelocityLimitExceeded",)),
    # Attaching succeeds; every charge is declined.
    (TestCard("4000000000000341", "visa", decline=declined("generic_decline")), ("chargeCustomerFail",)),
    (TestCard("4000002500003155", "visa", three_d_secure="on_session"), ("authenticationRequiredOnSetup",)),
    (TestCard("4000002760003184", "visa", three_d_secure="always"), ("authenticationRequired",)),
    (TestCard("4000008260003178", "visa", three_d_secure="always",
              decline_after_authentication=declined("insufficient_funds")),
     ("authenticationRequiredChargeDeclinedInsufficientFunds",)),
    (TestCard("4000000000003220", "visa", three_d_secure="always"), ("threeDSecure2Required",)),
    (TestCard("4000000000000259", "visa", disputed=True), ("createDispute",)),
    (TestCard("4000000000005126", "visa", refund_fails=True), ("refundFail",)),
]

BY_NUMBER: dict[str, TestCard] = {card.number: card for card, _ in _CARDS}
BY_FINGERPRINT: dict[str, TestCard] = {card.fingerprint: card for card, _ in _CARDS}
# ``pm_card_<name>`` and ``tok_<name>``; Stripe also drops the ``visa_`` of ``tok_visa_chargeDeclined...``.
ALIASES: dict[str, TestCard] = {}
for _card, _names in _CARDS:
    for _name in _names:
        ALIASES[f"pm_card_{_name}"] = _card
        ALIASES[f"tok_{_name}"] = _card
        if _name.startswith("visa_charge"):
            ALIASES[f"tok_{_name[5:]}"] = _card


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = ord(ch) - 48
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def by_alias(alias: str) -> TestCard | None:
    return ALIASES.get(alias)


def by_fingerprint(value: str | None) -> TestCard | None:
    return BY_FINGERPRINT.get(value or "")


# -- test bank accounts (SEPA, ACH, Bacs): they settle after a delay, or fail -------------------------------
BANK_MESSAGES = {
    "generic_could_not_process": "The payment could not be processed by the customer's bank.",
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "debit_not_authorized": "The customer has notified their bank that this payment was unauthorized.",
    "invalid_currency": "The customer's bank account cannot accept payments in this currency.",
    "charge_exceeds_source_limit": "This payment exceeds the weekly volume limit of the account.",
    "charge_exceeds_weekly_limit": "This payment exceeds the weekly transaction limit of the account.",
    "charge_exceeds_transaction_limit": "This payment exceeds the transaction limit of the account.",
}
DELAYED = 180.0  # Stripe's "after three minutes" accounts


@dataclass(frozen=True)
class BankOutcome:
    failure_code: str | None = None
    extra_delay: float = 0.0
    never_settles: bool = False

    @property
    def message(self) -> str:
        return BANK_MESSAGES[self.failure_code or "generic_could_not_process"]

    @property
    def error_code(self) -> str:
        """The PaymentIntent's ``last_payment_error.code``: the bank's code where it is one of Stripe's error
        codes, else Stripe's code for a failed asynchronous attempt (the charge keeps the bank's code)."""
        code = self.failure_code or "generic_could_not_process"
        return code if code in BANK_ERROR_CODES else "payment_intent_payment_attempt_failed"


# Bank failure codes that are also error codes of the API (the others exist only as a charge's failure_code).
BANK_ERROR_CODES = frozenset({"insufficient_funds", "account_closed", "no_account", "debit_not_authorized",
                              "charge_exceeds_source_limit", "charge_exceeds_transaction_limit"})


def bank_fingerprint(method: str, account: str) -> str:
    return fingerprint(f"{method}:{account}")


# From docs.stripe.com/testing (SEPA: the AT/BE/DE/FR/IE accounts; ACH: routing 110000000; Bacs: sort
# code 108800). Accounts not listed succeed.
_SEPA_SCENARIOS = {
    "successDelayed": BankOutcome(extra_delay=DELAYED),
    "failed": BankOutcome("generic_could_not_process"),
    "failedDelayed": BankOutcome("generic_could_not_process", DELAYED),
    "exceedsWeeklyVolumeLimit": BankOutcome("charge_exceeds_source_limit"),
    "exceedsWeeklyTransactionLimit": BankOutcome("charge_exceeds_weekly_limit"),
    "insufficientFunds": BankOutcome("insufficient_funds"),
}
_SEPA_IBANS = {
    "successDelayed": ("AT321904300235473204", "BE78510007547064", "DE08370400440532013003",
                       "FR3020041010050500013M02609", "IE24AIBK93115212345671"),
    "failed": ("AT861904300235473202", "BE68539007547034", "DE62370400440532013001",
               "FR8420041010050500013M02607", "IE02AIBK93115212345679"),
    "failedDelayed": ("AT051904300235473205", "BE51510007547065", "DE78370400440532013004",
                      "FR7920041010050500013M02600", "IE94AIBK93115212345672"),
    "exceedsWeeklyVolumeLimit": ("AT981904300000343434", "BE90510000343434", "DE65370400440000343434",
                                 "FR9720041010050000000343434", "IE10AIBK93115200343434"),
    "exceedsWeeklyTransactionLimit": ("AT601904300000121212", "BE52510000121212", "DE27370400440000121212",
                                      "FR5920041010050000000121212", "IE69AIBK93115200121212"),
    "insufficientFunds": ("AT981904300002222227", "BE90510002222227", "DE65370400440002222227",
                          "FR9720041010050000002222227", "IE10AIBK93115202222227"),
}
# PaymentMethod creation fails for these (bank does not support SEPA Direct Debit / debits).
SEPA_REFUSED_IBANS = frozenset({
    "AT271904300000055555", "BE19510000055555", "DE91370400440000055555", "FR2620041010050000000055555",
    "IE36AIBK93115200055555", "AT511904300000066666", "BE43510000066666", "DE18370400440000066666",
    "FR5020041010050000000066666", "IE60AIBK93115200066666",
})
_ACH = {
    "000111111113": BankOutcome("account_closed"),
    "000111111116": BankOutcome("no_account"),
    "000222222227": BankOutcome("insufficient_funds"),
    "000333333335": BankOutcome("debit_not_authorized"),
    "000444444440": BankOutcome("invalid_currency"),
    "000777777771": BankOutcome("charge_exceeds_weekly_limit"),
    "000000000009": BankOutcome(never_settles=True),
}
_BACS = {
    "90012345": BankOutcome(extra_delay=DELAYED),
    "33333335": BankOutcome("debit_not_authorized"),
    "93333335": BankOutcome("debit_not_authorized", DELAYED),
    "22222227": BankOutcome("insufficient_funds"),
    "92222227": BankOutcome("insufficient_funds", DELAYED),
    "34343434": BankOutcome("charge_exceeds_source_limit"),
    "12121212": BankOutcome("charge_exceeds_transaction_limit"),
    # Not in Stripe's published table; kept failing because Tally's brief names them.
    "55555555": BankOutcome("generic_could_not_process"),
    "84444444": BankOutcome("generic_could_not_process"),
}

BANK_OUTCOMES: dict[str, BankOutcome] = {}
for _scenario, _ibans in _SEPA_IBANS.items():
    for _iban in _ibans:
        BANK_OUTCOMES[bank_fingerprint("sepa_debit", _iban)] = _SEPA_SCENARIOS[_scenario]
for _account, _outcome in _ACH.items():
    BANK_OUTCOMES[bank_fingerprint("us_bank_account", _account)] = _outcome
for _account, _outcome in _BACS.items():
    BANK_OUTCOMES[bank_fingerprint("bacs_debit", _account)] = _outcome

SUCCEEDS = BankOutcome()


def bank_outcome(fingerprint_value: str | None) -> BankOutcome:
    return BANK_OUTCOMES.get(fingerprint_value or "", SUCCEEDS)
