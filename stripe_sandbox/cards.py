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
    "fraudulent": DECLINED,
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
    dispute: str | None = None  # every captured charge is disputed with this reason
    inquiry: bool = False  # the dispute is an inquiry (no money moves) rather than a chargeback
    cvc_check: str | None = None  # the check's result when a CVC is given ("pass" otherwise)
    address_line1_check: str | None = None  # the checks' results when an address is given
    address_postal_code_check: str | None = None
    risk_level: str = "normal"
    blocked: bool = False  # Radar blocks every charge (``decline`` says how)
    section: str = "Cards by brand"
    note: str | None = None  # what else the guide says of it and the sandbox does not simulate

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.number)

    @property
    def disputed(self) -> bool:
        return self.dispute is not None


@cache
def fingerprint(value: str) -> str:
    """Stripe's fingerprints are stable per account number; a hash gives the same property (cached: the
    test numbers are few and every charge reads one)."""
    digest = hashlib.sha256(b"sandbox-fingerprint:" + value.encode()).hexdigest()
    return "".join(c for c in digest if c.isalnum())[:16]


def _brands() -> list[tuple[TestCard, tuple[str, ...]]]:
    return [
        (TestCard("4242424242424242", "visa"), ("visa", "us")),
        (TestCard("4000056655665556", "visa", "debit"), ("visa_debit",)),
        (TestCard("5555555555554444", "mastercard"), ("mastercard",)),
        (TestCard("2223003122003222", "mastercard"), ()),
        (TestCard("5200828282828210", "mastercard", "debit"), ("mastercard_debit",)),
        (TestCard("5105105105105100", "mastercard", "prepaid"), ("mastercard_prepaid",)),
        (TestCard("378282246310005", "amex"), ("amex",)),
        (TestCard("371449635398431", "amex"), ()),
        (TestCard("6011111111111117", "discover"), ("discover",)),
        (TestCard("6011000990139424", "discover"), ()),
        (TestCard("6011981111111113", "discover", "debit"), ()),
        (TestCard("3056930009020004", "diners"), ("diners",)),
        (TestCard("36227206271667", "diners"), ()),
        (TestCard("6555900000604105", "discover", note="BCcard and DinaCard"), ()),
        (TestCard("3566002020360505", "jcb", country="JP"), ("jcb",)),
        (TestCard("6200000000000005", "unionpay", country="CN"), ("unionpay",)),
        (TestCard("6200000000000047", "unionpay", "debit", country="CN"), ()),
        (TestCard("6205500000000000004", "unionpay", country="CN"), ()),
        (TestCard("4000002500001001", "visa", country="FR", section="Co-branded cards",
                  note="Cartes Bancaires and Visa"), ()),
        (TestCard("5555552500001001", "mastercard", country="FR", section="Co-branded cards",
                  note="Cartes Bancaires and Mastercard"), ()),
    ]


# Cards by country: ISO code, number, and the funding where it is not credit.
_COUNTRIES = (
    ("ar", "4000000320000021"), ("br", "4000000760000002"), ("ca", "4000001240000000"),
    ("cl", "4000001520000001"), ("co", "4000001700000003"), ("cr", "4000001880000005"),
    ("ec", "4000002180000000"), ("mx", "4000004840008001"), ("pa", "4000005910000000"),
    ("py", "4000006000000066"), ("pe", "4000006040000068"), ("uy", "4000008580000003"),
    ("ae", "4000007840000001"), ("at", "4000000400000008"), ("be", "4000000560000004"),
    ("bg", "4000001000000000"), ("by", "4000001120000005"), ("hr", "4000001910000009"),
    ("cy", "4000001960000008"), ("cz", "4000002030000002"), ("dk", "4000002080000001"),
    ("ee", "4000002330000009"), ("fi", "4000002460000001"), ("fr", "4000002500000003"),
    ("de", "4000002760000016"), ("gi", "4000002920000005"), ("gr", "4000003000000030"),
    ("hu", "4000003480000005"), ("ie", "4000003720000005"), ("it", "4000003800000008"),
    ("lv", "4000004280000005"), ("li", "4000004380000004"), ("lt", "4000004400000000"),
    ("lu", "4000004420000006"), ("mt", "4000004700000007"), ("nl", "4000005280000002"),
    ("no", "4000005780000007"), ("pl", "4000006160000005"), ("pt", "4000006200000007"),
    ("ro", "4000006420000001"), ("sa", "4000006820000007"), ("si", "4000007050000006"),
    ("sk", "4000007030000001"), ("es", "4000007240000007"), ("se", "4000007520000008"),
    ("ch", "4000007560000009"), ("gb", "4000008260000000"), ("au", "4000000360000006"),
    ("cn", "4000001560000002"), ("hk", "4000003440000004"), ("in", "4000003560000008"),
    ("jp", "4000003920000003"), ("my", "4000004580000002"), ("nz", "4000005540000008"),
    ("sg", "4000007020000003"), ("tw", "4000001580000008"),
)


def _countries() -> list[tuple[TestCard, tuple[str, ...]]]:
    out = [(TestCard(number, "visa", country=code.upper(), section="Cards by country"), (code,))
           for code, number in _COUNTRIES]
    out += [
        (TestCard("4000058260000005", "visa", "debit", country="GB", section="Cards by country"), ("gb_debit",)),
        (TestCard("5555558265554449", "mastercard", country="GB", section="Cards by country"),
         ("gb_mastercard",)),
        (TestCard("4000007640000003", "visa", country="TH", section="Cards by country"), ("th_credit",)),
        (TestCard("4000057640000008", "visa", "debit", country="TH", section="Cards by country"), ("th_debit",)),
    ]
    return out


def _declines() -> list[tuple[TestCard, tuple[str, ...]]]:
    section = "Declined payments"
    return [
        (TestCard("4000000000000002", "visa", decline=declined("generic_decline"), section=section),
         ("visa_chargeDeclined", "chargeDeclined")),
        (TestCard("4000000000009995", "visa", decline=declined("insufficient_funds"), section=section),
         ("visa_chargeDeclinedInsufficientFunds", "chargeDeclinedInsufficientFunds")),
        (TestCard("4000000000009987", "visa", decline=declined("lost_card"), section=section),
         ("visa_chargeDeclinedLostCard", "chargeDeclinedLostCard")),
        (TestCard("4000000000009979", "visa", decline=declined("stolen_card"), section=section),
         ("visa_chargeDeclinedStolenCard", "chargeDeclinedStolenCard")),
        (TestCard("4000000000000069", "visa", decline=Decline("expired_card", "expired_card"), section=section),
         ("chargeDeclinedExpiredCard",)),
        (TestCard("4000000000000127", "visa", decline=Decline("incorrect_cvc", "incorrect_cvc"), section=section),
         ("chargeDeclinedIncorrectCvc",)),
        (TestCard("4000000000000119", "visa", decline=Decline("processing_error", "processing_error"),
                  section=section), ("chargeDeclinedProcessingError",)),
        (TestCard("4000000000006975", "visa", decline=declined("card_velocity_exceeded"), section=section),
         ("visa_chargeDeclinedVelocityLimitExceeded", "chargeDeclinedVelocityLimitExceeded")),
        # Attaching succeeds; every charge is declined.
        (TestCard("4000000000000341", "visa", decline=declined("generic_decline"), section=section,
                  note="attaches to a customer, then every charge is declined"), ("chargeCustomerFail",)),
    ]


def _fraud() -> list[tuple[TestCard, tuple[str, ...]]]:
    section = "Fraud prevention"
    fraudulent = declined("fraudulent")
    return [
        (TestCard("4100000000000019", "visa", decline=fraudulent, blocked=True, risk_level="highest",
                  section=section), ("radarBlock",)),
        (TestCard("4000000000004954", "visa", decline=fraudulent, blocked=True, risk_level="highest",
                  section=section), ("riskLevelHighest",)),
        (TestCard("4000000000009235", "visa", risk_level="elevated", section=section), ("riskLevelElevated",)),
        (TestCard("4000000000000101", "visa", cvc_check="fail", section=section), ("cvcCheckFail",)),
        (TestCard("4000000000000036", "visa", address_postal_code_check="fail", address_line1_check="pass",
                  section=section), ("avsZipFail",)),
        (TestCard("4000000000000028", "visa", address_line1_check="fail", address_postal_code_check="pass",
                  section=section), ("avsLine1Fail",)),
        (TestCard("4000000000000010", "visa", address_line1_check="fail", address_postal_code_check="fail",
                  section=section), ("avsFail",)),
        (TestCard("4000000000000044", "visa", address_line1_check="unavailable",
                  address_postal_code_check="unavailable", section=section), ("avsUnchecked",)),
    ]


def _authentication() -> list[tuple[TestCard, tuple[str, ...]]]:
    section = "3D Secure"
    return [
        (TestCard("4000002500003155", "visa", three_d_secure="on_session", section=section),
         ("authenticationRequiredOnSetup",)),
        (TestCard("4000003800000446", "visa", three_d_secure="on_session", country="IT", section=section),
         ("authenticationRequiredSetupForOffSession",)),
        (TestCard("4000002760003184", "visa", three_d_secure="always", country="DE", section=section),
         ("authenticationRequired",)),
        (TestCard("4000008260003178", "visa", three_d_secure="always", country="GB",
                  decline_after_authentication=declined("insufficient_funds"), section=section),
         ("authenticationRequiredChargeDeclinedInsufficientFunds",)),
        (TestCard("4000000000003220", "visa", three_d_secure="always", section=section),
         ("threeDSecure2Required",)),
        (TestCard("4000000000003063", "visa", three_d_secure="always", section=section),
         ("threeDSecureRequired",)),
        (TestCard("4000008400001629", "visa", three_d_secure="always",
                  decline_after_authentication=declined("generic_decline"), section=section),
         ("threeDSecureRequiredChargeDeclined",)),
        (TestCard("4000000000003055", "visa", section=section, note="3D Secure supported, not required"),
         ("threeDSecureOptional",)),
    ]


def _after_payment() -> list[tuple[TestCard, tuple[str, ...]]]:
    section = "Disputes, refunds and balance"
    return [
        (TestCard("4000000000000259", "visa", dispute="fraudulent", section=section), ("createDispute",)),
        (TestCard("4000000000002685", "visa", dispute="product_not_received", section=section),
         ("createDisputeProductNotReceived",)),
        (TestCard("4000000000001976", "visa", dispute="fraudulent", inquiry=True, section=section),
         ("createDisputeInquiry",)),
        (TestCard("4000000404000079", "visa", dispute="fraudulent", section=section,
                  note="Stripe disputes it several times; the sandbox once"), ("createMultipleDisputes",)),
        (TestCard("4000000000005423", "visa", section=section,
                  note="Stripe files an early fraud warning; the sandbox has no Radar objects"),
         ("createIssuerFraudRecord",)),
        (TestCard("4000000000005126", "visa", refund_fails=True, section=section), ("refundFail",)),
        (TestCard("4000000000000077", "visa", section=section, note="funds available at once on Stripe"),
         ("bypassPending",)),
        (TestCard("4000003720000278", "visa", country="IE", section=section,
                  note="funds available at once on Stripe"), ("bypassPendingInternational",)),
        (TestCard("4000000000000093", "visa", section=section, note="domestic pricing on Stripe"),
         ("domesticPricing",)),
    ]


_CARDS: list[tuple[TestCard, tuple[str, ...]]] = [
    *_brands(), *_countries(), *_declines(), *_fraud(), *_authentication(), *_after_payment()]

BY_NUMBER: dict[str, TestCard] = {card.number: card for card, _ in _CARDS}
BY_FINGERPRINT: dict[str, TestCard] = {card.fingerprint: card for card, _ in _CARDS}
# ``pm_card_<name>`` and ``tok_<name>``; Stripe also drops the ``visa_`` of ``tok_visa_chargeDeclined...``.
ALIASES: dict[str, TestCard] = {}
for _card, _names in _CARDS:
    for _name in _names:
        ALIASES[f"pm_card_{_name}"] = _card
        ALIASES[f"tok_{_name}"] = _card


def table() -> list[tuple[TestCard, tuple[str, ...]]]:
    """Every test card with its PaymentMethod / token names, in the testing guide's order."""
    return list(_CARDS)


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
