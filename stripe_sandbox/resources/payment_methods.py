"""Payment methods: create (test cards, bank debits, redirect methods), retrieve, update, attach, detach,
list (also ``/v1/customers/{id}/payment_methods``).

Test ids (``pm_card_visa``, ``tok_visa``) stand for a card of ``cards.py``. Retrieving one returns a stored
PaymentMethod with that id; using one (attach, confirm) makes a fresh PaymentMethod each time, as Stripe
does, so that the same test id can be attached to many customers.
"""

from __future__ import annotations

import time
from typing import Any

from .. import cards
from ..errors import StripeError, invalid_request, missing_param, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer

CARD = "card"
REDIRECT_TYPES = ("alipay", "bancontact", "fpx", "grabpay", "ideal", "klarna", "p24", "paynow")
DELAYED_TYPES = ("bacs_debit", "sepa_debit", "us_bank_account")
TYPES = (CARD, *REDIRECT_TYPES, *DELAYED_TYPES)
# Stripe: "Alipay, GrabPay, FPX and PayNow are one-time only" - they cannot be saved to a customer.
ONE_TIME_TYPES = frozenset({"alipay", "fpx", "grabpay", "paynow"})
# Methods whose next action shows a QR code to scan rather than sending the customer away: no return_url.
QR_CODE_TYPES = frozenset({"paynow"})
TYPE_PARAMS = tuple(t for t in TYPES if t != CARD)
ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


# -- building objects -------------------------------------------------------------------------------------
def billing_details(p: Params | dict[str, Any] | None) -> Obj:
    """Stripe's billing_details from request params (or a plain dict, for the hosted pages)."""
    if isinstance(p, dict):
        p = Params(p, "billing_details")
    if p is None:
        return {"address": dict.fromkeys(ADDRESS_FIELDS), "email": None, "name": None, "phone": None,
                "tax_id": None}
    address = p.dict("address")
    return {
        "address": {k: (address.optional_str(k) if address else None) for k in ADDRESS_FIELDS},
        "email": p.optional_str("email"),
        "name": p.optional_str("name"),
        "phone": p.optional_str("phone"),
        "tax_id": p.optional_str("tax_id"),
    }


def _base(sb: Any, type_: str, details: Obj | None, billing: Obj, metadata: dict[str, str],
          object_id: str | None = None) -> Obj:
    pm: Obj = {
        "id": object_id or new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing,
        "card": None,
        "created": sb.clock.now_int(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata,
        "type": type_,
    }
    pm[type_] = details
    return pm


def _card_details(card: cards.TestCard, exp_month: int, exp_year: int, cvc_given: bool) -> Obj:
    return {
        "brand": card.brand,
        "checks": {"address_line1_check": card.address_line1_check,
                   "address_postal_code_check": card.address_postal_code_check,
                   "cvc_check": card.cvc_check or ("unchecked" if cvc_given else None)},
        "country": card.country,
        "display_brand": card.brand,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def _store_card(sb: Any, card: cards.TestCard, exp_month: int, exp_year: int, cvc_given: bool,
                billing: Obj | None = None, metadata: dict[str, str] | None = None,
                object_id: str | None = None) -> Obj:
    pm = _base(sb, CARD, _card_details(card, exp_month, exp_year, cvc_given), billing or billing_details(None),
               metadata or {}, object_id)
    return sb.store.add(pm)


def _test_expiry(sb: Any) -> tuple[int, int]:
    """Test PaymentMethods carry a near-future expiry, as Stripe's do."""
    now = time.gmtime(sb.clock.now())
    return now.tm_mon, now.tm_year + 1


def card_error(message: str, code: str, param: str | None = None, decline_code: str | None = None,
               **extra: Any) -> StripeError:
    return StripeError(402, "card_error", message, code=code, param=param, decline_code=decline_code, **extra)


def _to_int(value: int | str | None, param: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise invalid_request(f"Invalid integer: {value}", param=param) from None


def card_payment_method(sb: Any, *, number: str, exp_month: int | str, exp_year: int | str, cvc: str | None,
                        billing_details: dict[str, Any] | None, metadata: dict[str, str] | None = None) -> Obj:
    """A stored card PaymentMethod from raw card details (the hosted pages call this); raises the card_error
    Stripe answers for a bad, expired or non-test card, with ``param`` ``number``, ``exp_month``,
    ``exp_year`` or ``cvc`` as Stripe's."""
    return _new_card(sb, number, exp_month, exp_year, cvc, billing_details_of(billing_details), metadata or {})


def billing_details_of(value: dict[str, Any] | None) -> Obj:
    """billing_details from a plain dict whose missing values may be None."""
    value = {k: v for k, v in (value or {}).items() if v is not None}
    if isinstance(value.get("address"), dict):
        value["address"] = {k: v for k, v in value["address"].items() if v is not None}
    return billing_details(Params(value, "billing_details"))


def _new_card(sb: Any, number: str, exp_month: int | str | None, exp_year: int | str | None, cvc: str | None,
              billing: Obj, metadata: dict[str, str]) -> Obj:
    card = _test_card(number)
    month, year = _expiry(sb, exp_month, exp_year)
    if cvc:
        cvc = cvc.strip()
        if not cvc.isdigit() or len(cvc) != (4 if card.brand == "amex" else 3):
            raise card_error("Your card's security code is invalid.", "invalid_cvc", "cvc")
    return _store_card(sb, card, month, year, bool(cvc), billing, metadata)


def _test_card(number: str) -> cards.TestCard:
    """The test card a typed number names; a wrong number, or a real card, is refused as Stripe does."""
    digits = "".join(ch for ch in (number or "") if ch not in " -")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not cards.luhn_valid(digits):
        raise card_error("Your card number is incorrect.", "incorrect_number", "number")
    card = cards.BY_NUMBER.get(digits)
    if card is None:
        # Stripe refuses real card numbers in test mode.
        raise card_error(cards.MESSAGES["test_mode_live_card"], "card_declined", None, "test_mode_live_card")
    return card


def _expiry(sb: Any, exp_month: int | str | None, exp_year: int | str | None) -> tuple[int, int]:
    """Month and four-digit year, not past (on the sandbox clock) and not more than 50 years ahead."""
    month = _to_int(exp_month, "exp_month")
    year = _to_int(exp_year, "exp_year")
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise card_error("Your card's expiration month is invalid.", "invalid_expiry_month", "exp_month")
    now = time.gmtime(sb.clock.now())
    if year < now.tm_year or year > now.tm_year + 50:
        raise card_error("Your card's expiration year is invalid.", "invalid_expiry_year", "exp_year")
    if year == now.tm_year and month < now.tm_mon:
        raise card_error("Your card has expired.", "expired_card", "exp_month", "expired_card")
    return month, year


def _card_from_params(sb: Any, c: Params, billing: Obj, metadata: dict[str, str]) -> Obj:
    token = c.optional_str("token")
    if token is not None:
        c.only("token")
        card = cards.by_alias(token) if token.startswith("tok_") else None
        if card is None:
            raise no_such("token", token, "card[token]")
        month, year = _test_expiry(sb)
        return _store_card(sb, card, month, year, False, billing, metadata)
    c.only("number", "exp_month", "exp_year", "cvc", "networks")
    number = c.str("number", required=True) or ""
    for name in ("exp_month", "exp_year"):
        if c.raw(name) in (None, ""):
            raise missing_param(f"card[{name}]")
    return _new_card(sb, number, c.raw("exp_month"), c.raw("exp_year"), c.str("cvc"), billing, metadata)


def _iban_valid(iban: str) -> bool:
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit() or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _digits(p: Params, name: str, lengths: tuple[int, ...]) -> str:
    raw = (p.str(name, required=True) or "").replace("-", "").replace(" ", "")
    if not raw.isdigit() or len(raw) not in lengths:
        raise invalid_request(f"Invalid {p._name(name)}: must be {' or '.join(map(str, lengths))} digits.",
                              param=p._name(name))
    return raw


def _sepa_debit(p: Params, billing: Obj) -> Obj:
    p.only("iban")
    iban = (p.str("iban", required=True) or "").replace(" ", "").upper()
    if not _iban_valid(iban):
        raise invalid_request("The provided IBAN is invalid.", param="sepa_debit[iban]",
                              code="invalid_bank_account_iban")
    if iban in cards.SEPA_REFUSED_IBANS:
        raise invalid_request("The bank of this IBAN does not support SEPA Direct Debit.",
                              param="sepa_debit[iban]", code="sepa_unsupported_account")
    for field in ("name", "email"):  # SEPA mandates need both
        if not billing[field]:
            raise missing_param(f"billing_details[{field}]")
    return {"bank_code": iban[4:9], "branch_code": None, "country": iban[:2],
            "fingerprint": cards.bank_fingerprint("sepa_debit", iban), "generated_from": None,
            "last4": iban[-4:]}


def _us_bank_account(p: Params, billing: Obj) -> Obj:
    p.only("account_number", "routing_number", "account_holder_type", "account_type", "financial_connections_account")
    account = _digits(p, "account_number", tuple(range(4, 18)))
    routing = _digits(p, "routing_number", (9,))
    if not billing["name"]:
        raise missing_param("billing_details[name]")
    return {
        "account_holder_type": p.str("account_holder_type", "individual", choices=("individual", "company")),
        "account_type": p.str("account_type", "checking", choices=("checking", "savings")),
        "bank_name": "STRIPE TEST BANK",
        "financial_connections_account": None,
        "fingerprint": cards.bank_fingerprint("us_bank_account", account),
        "last4": account[-4:],
        "networks": {"preferred": "ach", "supported": ["ach"]},
        "routing_number": routing,
        "status_details": None,
    }


def _bacs_debit(p: Params) -> Obj:
    p.only("account_number", "sort_code")
    account = _digits(p, "account_number", (8,))
    sort_code = _digits(p, "sort_code", (6,))
    return {"fingerprint": cards.bank_fingerprint("bacs_debit", account), "last4": account[-4:],
            "sort_code": sort_code}


def _redirect_details(type_: str, p: Params | None) -> Obj:
    p = p or Params({}, type_)
    if type_ == "fpx":
        p.only("bank", "account_holder_type")
        # Stripe requires the bank; the sandbox picks one so that ``payment_method_data[type]=fpx`` suffices.
        return {"account_holder_type": p.str("account_holder_type", "individual"),
                "bank": p.str("bank", "maybank2u")}
    if type_ == "ideal":
        p.only("bank")
        return {"bank": p.optional_str("bank"), "bic": None}
    if type_ == "p24":
        p.only("bank")
        return {"bank": p.optional_str("bank")}
    if type_ == "klarna":
        p.only("dob")
        return {"dob": None}
    p.only()
    return {}


def create_payment_method(sb: Any, p: Params) -> Obj:
    """A PaymentMethod from ``POST /v1/payment_methods`` or a ``payment_method_data`` hash."""
    type_ = p.str("type", required=True, choices=TYPES)
    assert type_ is not None
    for other in TYPE_PARAMS + (CARD,):
        if other != type_ and other in p:
            raise invalid_request(
                f"You passed {p._name(other)} but specified type {type_}; the hash must match the type.",
                param=p._name(other))
    billing = billing_details(p.dict("billing_details"))
    metadata = merge_metadata({}, p.raw("metadata"), p._name("metadata"))
    redisplay = p.str("allow_redisplay", "unspecified", choices=("always", "limited", "unspecified"))
    if type_ == CARD:
        c = p.dict("card", required=True)
        assert c is not None
        pm = _card_from_params(sb, c, billing, metadata)
    else:
        sub = p.dict(type_)
        if type_ == "sepa_debit":
            details = _sepa_debit(_need(sub, p, "sepa_debit", "iban"), billing)
        elif type_ == "us_bank_account":
            details = _us_bank_account(_need(sub, p, "us_bank_account", "account_number"), billing)
        elif type_ == "bacs_debit":
            details = _bacs_debit(_need(sub, p, "bacs_debit", "account_number"))
        else:
            details = _redirect_details(type_, sub)
        pm = sb.store.add(_base(sb, type_, details, billing, metadata))
    if redisplay != "unspecified":
        pm["allow_redisplay"] = redisplay
        sb.store.save(pm)
    return pm


def _need(sub: Params | None, p: Params, type_: str, first: str) -> Params:
    if sub is None:
        raise missing_param(f"{p._name(type_)}[{first}]")
    return sub


# -- finding and attaching ------------------------------------------------------------------------------
def get_payment_method(sb: Any, pm_id: str, param: str = "payment_method") -> Obj:
    pm = sb.store.get(pm_id, "payment_method")
    if pm is None:
        pm = _canonical_test_pm(sb, pm_id)
        if pm is None:
            raise no_such("PaymentMethod", pm_id, param)
    return pm


def _canonical_test_pm(sb: Any, pm_id: str) -> Obj | None:
    """``GET /v1/payment_methods/pm_card_visa``: one stored object per test id, made on first use."""
    card = cards.by_alias(pm_id)
    if card is None or not pm_id.startswith("pm_"):
        return None
    month, year = _test_expiry(sb)
    return _store_card(sb, card, month, year, False, object_id=pm_id)


def resolve_payment_method(sb: Any, pm_id: str, param: str = "payment_method") -> Obj:
    """The PaymentMethod a request names: a test id (``pm_card_visa``, ``tok_visa``) makes a fresh one."""
    card = cards.by_alias(pm_id)
    if card is not None:
        month, year = _test_expiry(sb)
        return _store_card(sb, card, month, year, False)
    pm = sb.store.get(pm_id, "payment_method")
    if pm is None:
        raise no_such("PaymentMethod", pm_id, param)
    return pm


def attach_to_customer(sb: Any, pm_id: str, customer: Obj, param: str = "payment_method") -> Obj:
    pm = resolve_payment_method(sb, pm_id, param)
    if pm["customer"] == customer["id"]:
        return pm
    if pm["customer"] is not None:
        raise invalid_request("The payment method you provided has already been attached to a customer.",
                              param=param, code="payment_method_unexpected_state")
    if pm["type"] in ONE_TIME_TYPES:
        raise invalid_request(f"PaymentMethods of type {pm['type']} cannot be attached to a customer; "
                              "they can be used for one payment only.", param=param,
                              code="payment_method_unexpected_state")
    pm["customer"] = customer["id"]
    sb.store.save(pm)
    emit(sb, "payment_method.attached", pm, {"customer": None})
    return pm


# -- routes ---------------------------------------------------------------------------------------------
@route("POST", "/v1/payment_methods", params=(
    "type", "card", "billing_details", "metadata", "allow_redisplay", *TYPE_PARAMS))
def create(sb: Any, p: Params) -> Obj:
    return create_payment_method(sb, p)


@route("GET", "/v1/payment_methods/{pm_id}")
def retrieve(sb: Any, p: Params, pm_id: str) -> Obj:
    return get_payment_method(sb, pm_id, "payment_method")


@route("POST", "/v1/payment_methods/{pm_id}", params=(
    "billing_details", "metadata", "allow_redisplay", "card", "us_bank_account"))
def update(sb: Any, p: Params, pm_id: str) -> Obj:
    pm = get_payment_method(sb, pm_id, "payment_method")
    before = dict(pm)
    if "billing_details" in p:
        update_billing = p.dict("billing_details")
        merged = dict(pm["billing_details"])
        if update_billing is not None:
            fresh = billing_details(update_billing)
            for key in ("email", "name", "phone", "tax_id"):
                if key in update_billing:
                    merged[key] = fresh[key]
            if "address" in update_billing:
                merged["address"] = fresh["address"]
        pm["billing_details"] = merged
    if "metadata" in p:
        pm["metadata"] = merge_metadata(pm["metadata"], p.raw("metadata"))
    if "allow_redisplay" in p:
        pm["allow_redisplay"] = p.str("allow_redisplay", choices=("always", "limited", "unspecified"))
    card_update = p.dict("card")
    if card_update is not None:
        if pm["type"] != CARD:
            raise invalid_request("You can only update card details of a card PaymentMethod.", param="card")
        card_update.only("exp_month", "exp_year", "networks")
        details = dict(pm["card"])
        month = card_update.int("exp_month", details["exp_month"], minimum=1, maximum=12)
        year = card_update.int("exp_year", details["exp_year"])
        assert month is not None and year is not None
        now = time.gmtime(sb.clock.now())
        if (year, month) < (now.tm_year, now.tm_mon):
            raise card_error("Your card's expiration year is invalid.", "invalid_expiry_year", "exp_year")
        details["exp_month"], details["exp_year"] = month, year
        pm["card"] = details
    sb.store.save(pm)
    previous = changed(pm, before)
    if previous:
        emit(sb, "payment_method.updated", pm, previous)
    return pm


@route("POST", "/v1/payment_methods/{pm_id}/attach", params=("customer", "customer_account"))
def attach(sb: Any, p: Params, pm_id: str) -> Obj:
    customer = get_customer(sb, p.str("customer", required=True) or "", "customer")
    return attach_to_customer(sb, pm_id, customer, "payment_method")


@route("POST", "/v1/payment_methods/{pm_id}/detach")
def detach(sb: Any, p: Params, pm_id: str) -> Obj:
    pm = get_payment_method(sb, pm_id, "payment_method")
    customer_id = pm["customer"]
    if customer_id is None:
        raise invalid_request("The payment method you provided is not attached to a customer so detachment is "
                              "impossible.", param="payment_method", code="payment_method_unexpected_state")
    pm["customer"] = None
    sb.store.save(pm)
    customer = sb.store.get(customer_id, "customer")
    if customer is not None and customer.get("invoice_settings", {}).get("default_payment_method") == pm["id"]:
        # Stripe clears a default that no longer belongs to the customer.
        customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": None}
        sb.store.save(customer)
    emit(sb, "payment_method.detached", pm, {"customer": customer_id})
    return pm


def _list(sb: Any, p: Params, customer_id: str | None, url: str) -> Obj:
    type_ = p.str("type", choices=TYPES)
    redisplay = p.str("allow_redisplay", choices=("always", "limited", "unspecified"))

    def where(pm: Obj) -> bool:
        return (type_ is None or pm["type"] == type_) and (redisplay is None or pm["allow_redisplay"] == redisplay)

    store = sb.store
    collection = (store.collection("payment_method", "customer", customer_id) if customer_id
                  else store.collection("payment_method"))
    return paginate(store, collection, p, url, where if type_ or redisplay else None)


@route("GET", "/v1/payment_methods", params=(*LIST_PARAMS, "customer", "type", "allow_redisplay",
                                            "customer_account"))
def list_(sb: Any, p: Params) -> Obj:
    customer_id = p.optional_str("customer")
    if customer_id:
        get_customer(sb, customer_id, "customer")
    return _list(sb, p, customer_id, "/v1/payment_methods")


@route("GET", "/v1/customers/{customer_id}/payment_methods", params=(*LIST_PARAMS, "type", "allow_redisplay"))
def list_for_customer(sb: Any, p: Params, customer_id: str) -> Obj:
    get_customer(sb, customer_id, "customer")
    return _list(sb, p, customer_id, f"/v1/customers/{customer_id}/payment_methods")


@route("GET", "/v1/customers/{customer_id}/payment_methods/{pm_id}")
def retrieve_for_customer(sb: Any, p: Params, customer_id: str, pm_id: str) -> Obj:
    get_customer(sb, customer_id, "customer")
    pm = sb.store.get(pm_id, "payment_method")
    if pm is None or pm["customer"] != customer_id:
        raise no_such("PaymentMethod", pm_id, "payment_method")
    return pm
