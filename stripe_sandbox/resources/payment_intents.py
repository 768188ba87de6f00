"""PaymentIntents and Stripe's state machine:

requires_payment_method -> requires_confirmation -> requires_action (3-D Secure, redirect methods)
-> processing (bank debits, settled later by a scheduler job) -> requires_capture (manual capture)
-> succeeded; or canceled. A declined attempt records a failed charge and ``last_payment_error`` and
returns to requires_payment_method.

Every status change calls ``hooks.payment_intent_changed`` (Checkout listens).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, NoReturn

from .. import cards, hooks
from ..errors import DOC_URL, StripeError, invalid_request, no_such, state_error
from ..events import emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import on_start, route
from ..scheduler import job
from ..store import Obj
from .customer_records import get_customer
from .charges import mark_failed, mark_paid, new_charge
from .events import created_filter
from .payment_methods import (
    CARD, ONE_TIME_TYPES, QR_CODE_TYPES, REDIRECT_TYPES, TYPES, attach_to_customer, create_payment_method,
    resolve_payment_method,
)

MAX_AMOUNT = 99_999_999
UPDATABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CONFIRMABLE = UPDATABLE
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
# Methods offered by ``automatic_payment_methods`` for a currency (cards everywhere).
CURRENCIES: dict[str, frozenset[str]] = {
    "sepa_debit": frozenset({"eur"}),
    "ideal": frozenset({"eur"}),
    "bancontact": frozenset({"eur"}),
    "p24": frozenset({"eur", "pln"}),
    "klarna": frozenset({"eur", "usd", "gbp", "dkk", "nok", "sek", "chf", "czk", "pln", "aud", "nzd", "cad"}),
    "us_bank_account": frozenset({"usd"}),
    "bacs_debit": frozenset({"gbp"}),
    "grabpay": frozenset({"sgd", "myr"}),
    "fpx": frozenset({"myr"}),
    "paynow": frozenset({"sgd"}),
    "alipay": frozenset({"cny", "aud", "cad", "eur", "gbp", "hkd", "jpy", "myr", "nzd", "sgd", "usd"}),
}
AUTHENTICATION_FAILED = ("The provided PaymentMethod has failed authentication. You can provide payment_method_data "
                         "or a new PaymentMethod to attempt to fulfill this PaymentIntent again.")
PENDING_SETTLEMENTS = "payment_intents.pending_settlements"  # store.kv: pi id -> due time, survives restarts


# -- helpers ----------------------------------------------------------------------------------------------
def get_payment_intent(sb: Any, pi_id: str, param: str = "intent") -> Obj:
    pi = sb.store.get(pi_id, "payment_intent")
    if pi is None:
        raise no_such("payment_intent", pi_id, param)
    return pi


def _amount(p: Params, name: str = "amount", required: bool = True) -> int | None:
    return p.int(name, required=required, minimum=1, maximum=MAX_AMOUNT)


def _currency(p: Params, required: bool = True) -> str | None:
    raw = p.str("currency", required=required)
    if raw is None:
        return None
    currency = raw.lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_request(f"Invalid currency: {raw}. Stripe currencies are three-letter ISO codes.",
                              param="currency")
    return currency


def _methods_for(currency: str, allow_redirects: str) -> list[str]:
    return list(_methods_for_cached(currency, allow_redirects))


@cache
def _methods_for_cached(currency: str, allow_redirects: str) -> tuple[str, ...]:
    types = [CARD]
    for type_, currencies in CURRENCIES.items():
        if currency in currencies and (allow_redirects == "always" or type_ not in REDIRECT_TYPES):
            types.append(type_)
    return tuple(types)


def _method_types(p: Params) -> list[str]:
    types = p.str_list("payment_method_types")
    for i, type_ in enumerate(types):
        if type_ not in TYPES:
            raise invalid_request(f"The payment method type \"{type_}\" is invalid. Please ensure the provided type "
                                  "is activated in your dashboard and your account is enabled for any preview "
                                  "features that you are trying to use.", param=f"payment_method_types[{i}]",
                                  code="payment_intent_invalid_parameter")
    return list(dict.fromkeys(types))


def _method_options(types: list[str]) -> Obj:
    return {type_: dict(METHOD_OPTION_DEFAULTS.get(type_, {})) for type_ in types}


# The options Stripe shows for each method when none were given (the fields it always returns).
METHOD_OPTION_DEFAULTS: dict[str, Obj] = {
    CARD: {"installments": None, "mandate_options": None, "network": None, "request_three_d_secure": "automatic"},
    "bancontact": {"preferred_language": "en"},
    "klarna": {"preferred_locale": None},
}


def _shipping(p: Params | None) -> Obj | None:
    if p is None:
        return None
    p.only("address", "name", "carrier", "phone", "tracking_number")
    address = p.dict("address", required=True)
    assert address is not None
    address.only("city", "country", "line1", "line2", "postal_code", "state")
    return {
        "address": {k: address.optional_str(k) for k in ("city", "country", "line1", "line2", "postal_code",
                                                          "state")},
        "carrier": p.optional_str("carrier"),
        "name": p.str("name", required=True),
        "phone": p.optional_str("phone"),
        "tracking_number": p.optional_str("tracking_number"),
    }


def _status_error(pi: Obj, verb: str, allowed: tuple[str, ...]) -> StripeError:
    done = {"confirm": "confirmed", "capture": "captured", "cancel": "canceled"}[verb]
    return state_error(
        f"You cannot {verb} this PaymentIntent because it has a status of {pi['status']}. Only a PaymentIntent "
        f"with one of the following statuses may be {done}: {', '.join(allowed)}.",
        code="payment_intent_unexpected_state")


@contextmanager
def _all_or_nothing(pi: Obj) -> Iterator[None]:
    """A refused request changes nothing; a decline (402) is an outcome and keeps what it recorded."""
    snapshot = dict(pi)
    try:
        yield
    except StripeError as err:
        if err.status != 402:
            pi.clear()
            pi.update(snapshot)
        raise


def _set_status(sb: Any, pi: Obj, status: str) -> None:
    pi["status"] = status
    sb.store.save(pi)


def _changed(sb: Any, pi: Obj) -> None:
    hooks.payment_intent_changed(sb, pi)


# -- creating -----------------------------------------------------------------------------------------------
def _build(sb: Any, *, amount: int, currency: str, customer: str | None, metadata: dict[str, str] | None,
           payment_method_types: list[str] | None, automatic: Obj | None, description: str | None,
           receipt_email: str | None, capture_method: str, setup_future_usage: str | None) -> Obj:
    pi_id = new_id("pi")
    if payment_method_types is None:
        # Stripe's default since 2023-08-16: the methods enabled for the account, as ``automatic_payment_methods``.
        automatic = automatic or {"allow_redirects": "always", "enabled": True}
        payment_method_types = _methods_for(currency, automatic["allow_redirects"])
    return {
        "id": pi_id,
        "object": "payment_intent",
        "allowed_payment_method_types": None,
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{pi_id}_secret_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}",
        "confirmation_method": "automatic",
        "created": sb.clock.now_int(),
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": dict(metadata or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": _method_options(payment_method_types),
        "payment_method_types": payment_method_types,
        "payment_record": None,
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def new_payment_intent(sb: Any, *, amount: int, currency: str, customer: str | None = None,
                       metadata: dict[str, str] | None = None, payment_method_types: list[str] | None = None,
                       description: str | None = None, receipt_email: str | None = None,
                       capture_method: str = "automatic", setup_future_usage: str | None = None) -> Obj:
    """Store a PaymentIntent in ``requires_payment_method`` and emit ``payment_intent.created``."""
    if not 1 <= amount <= MAX_AMOUNT:
        raise invalid_request(f"Invalid amount: must be between 1 and {MAX_AMOUNT}.", param="amount")
    pi = _build(sb, amount=amount, currency=currency.lower(), customer=customer, metadata=metadata,
                payment_method_types=payment_method_types, automatic=None, description=description,
                receipt_email=receipt_email, capture_method=capture_method, setup_future_usage=setup_future_usage)
    sb.store.add(pi)
    emit(sb, "payment_intent.created", pi)
    return pi


def _check_method(sb: Any, pi: Obj, pm: Obj, param: str = "payment_method") -> None:
    if pm["type"] not in pi["payment_method_types"]:
        raise invalid_request(
            f"The PaymentMethod provided ({pm['type']}) is not allowed for this PaymentIntent. Please attach a "
            f"PaymentMethod of one of the following types: {', '.join(pi['payment_method_types'])}. "
            f"Alternatively, update the allowed payment_method_types for this PaymentIntent to include "
            f"\"{pm['type']}\".", param=param, code="payment_intent_incompatible_payment_method")
    owner = pm["customer"]
    if owner is not None and owner != pi["customer"]:
        if pi["customer"] is None:
            raise invalid_request(
                f"The provided PaymentMethod is attached to customer {owner}. To use it, you must also pass "
                "that customer on this PaymentIntent.", param=param)
        raise invalid_request("The provided PaymentMethod belongs to a different Customer than the one on this "
                              "PaymentIntent.", param=param)


def _payment_method_from(sb: Any, p: Params) -> Obj | None:
    if "payment_method" in p and "payment_method_data" in p:
        raise invalid_request("You may only specify one of these parameters: payment_method, payment_method_data.",
                              param="payment_method_data")
    data = p.dict("payment_method_data")
    if data is not None:
        return create_payment_method(sb, data)
    pm_id = p.optional_str("payment_method")
    return resolve_payment_method(sb, pm_id, "payment_method") if pm_id else None


def _customer_id(sb: Any, p: Params) -> str | None:
    customer_id = p.optional_str("customer")
    if customer_id is None:
        return None
    return get_customer(sb, customer_id, "customer")["id"]


# -- confirming ---------------------------------------------------------------------------------------------
def confirm_payment_intent(sb: Any, pi: Obj, payment_method_id: str | None, *, return_url: str | None = None,
                           off_session: bool = False) -> Obj:
    """Confirm with a PaymentMethod id (or the one already set). A decline raises the 402 card_error after
    recording it on the PaymentIntent."""
    if pi["status"] not in CONFIRMABLE:
        raise _status_error(pi, "confirm", CONFIRMABLE)
    pm = resolve_payment_method(sb, payment_method_id) if payment_method_id else None
    return _confirm(sb, pi, pm, return_url, off_session)


def _confirm(sb: Any, pi: Obj, pm: Obj | None, return_url: str | None, off_session: bool) -> Obj:
    if pm is None:
        pm_id = pi["payment_method"]
        pm = sb.store.get(pm_id, "payment_method") if pm_id else None
        if pm is None:
            raise state_error(
                "You cannot confirm this PaymentIntent because it's missing a payment method. You can either "
                "update the PaymentIntent with a payment method and then confirm it again, or confirm it again "
                "directly with a payment method.", code="payment_intent_unexpected_state")
    _check_confirmable(sb, pi, pm, return_url, off_session)
    type_ = pm["type"]
    pi["payment_method"] = pm["id"]
    pi["last_payment_error"] = None
    pi["next_action"] = None
    if type_ == CARD:
        card = cards.by_fingerprint(pm["card"]["fingerprint"])
        if card is not None and card.three_d_secure is not None:
            if not off_session:
                return _require_action(sb, pi, pm, return_url)
            if card.three_d_secure == "always":
                _decline(sb, pi, pm, cards.Decline("authentication_required", "authentication_required"))
            # "on_session" cards need no authentication once set up for off-session use.
        if card is not None and card.decline is not None:
            _decline(sb, pi, pm, card.decline)
        return _authorized(sb, pi, pm)
    if type_ in REDIRECT_TYPES:
        return _require_action(sb, pi, pm, return_url)
    return _start_processing(sb, pi, pm)


REDIRECTS_NEED_RETURN_URL = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these "
    "payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't "
    "want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.")


def _check_confirmable(sb: Any, pi: Obj, pm: Obj, return_url: str | None, off_session: bool) -> None:
    automatic = pi["automatic_payment_methods"] or {}
    if automatic.get("enabled") and automatic.get("allow_redirects") != "never" and not return_url \
            and not off_session:
        # Stripe refuses this whatever the method: another enabled one could redirect. Its error carries the
        # PaymentIntent (when one exists), and no code or param.
        stored = sb.store.get(pi["id"], "payment_intent") is not None
        raise invalid_request(REDIRECTS_NEED_RETURN_URL, payment_intent=dict(pi) if stored else None)
    _check_method(sb, pi, pm)
    type_ = pm["type"]
    if type_ in REDIRECT_TYPES and type_ not in QR_CODE_TYPES and not return_url:
        raise invalid_request(
            f"A `return_url` must be specified because this PaymentIntent uses a payment method ({type_}) that "
            "redirects the customer to authorize the payment.", param="return_url")
    if off_session and type_ in ONE_TIME_TYPES | set(REDIRECT_TYPES):
        raise invalid_request(f"PaymentMethods of type {type_} cannot be used off-session.", param="off_session")


def _error_object(pm: Obj, code: str, message: str, type_: str, *, charge: str | None = None,
                  decline_code: str | None = None) -> Obj:
    error: Obj = {"code": code, "doc_url": DOC_URL + code.replace("_", "-"), "message": message,
                  "payment_method": pm, "type": type_}
    if charge is not None:
        error["charge"] = charge
    if decline_code is not None:
        error["decline_code"] = decline_code
    return error


def _decline(sb: Any, pi: Obj, pm: Obj, decline: cards.Decline, three_d_secure: Obj | None = None) -> NoReturn:
    """Record a declined attempt (failed charge, ``last_payment_error``, events) and raise Stripe's 402."""
    charge = new_charge(sb, pi, pm, status="failed", failure_code=decline.code, failure_message=decline.message,
                        decline_code=decline.decline_code, three_d_secure=three_d_secure)
    pi["last_payment_error"] = _error_object(pm, decline.code, decline.message, "card_error", charge=charge["id"],
                                             decline_code=decline.decline_code)
    pi["latest_charge"] = charge["id"]
    pi["payment_method"] = None
    pi["next_action"] = None
    _set_status(sb, pi, "requires_payment_method")
    emit(sb, "charge.failed", charge)
    emit(sb, "payment_intent.payment_failed", pi)
    _changed(sb, pi)
    raise StripeError(402, "card_error", decline.message, code=decline.code, decline_code=decline.decline_code,
                      charge=charge["id"], payment_intent=dict(pi), payment_method=pm)


def _save_for_future(sb: Any, pi: Obj, pm: Obj) -> None:
    """``setup_future_usage`` with a customer attaches the PaymentMethod, as Stripe does on success."""
    if pi["setup_future_usage"] and pi["customer"] and pm["customer"] is None and pm["type"] not in ONE_TIME_TYPES:
        customer = sb.store.get(pi["customer"], "customer")
        if customer is not None:
            attach_to_customer(sb, pm["id"], customer)


def _authorized(sb: Any, pi: Obj, pm: Obj, three_d_secure: Obj | None = None) -> Obj:
    manual = pi["capture_method"] == "manual"
    charge = new_charge(sb, pi, pm, status="succeeded", captured=not manual, three_d_secure=three_d_secure)
    pi["latest_charge"] = charge["id"]
    pi["next_action"] = None
    if manual:
        pi["amount_capturable"] = pi["amount"]
        _set_status(sb, pi, "requires_capture")
    else:
        pi["amount_received"] = pi["amount"]
        _set_status(sb, pi, "succeeded")
    _save_for_future(sb, pi, pm)
    emit(sb, "charge.succeeded", charge)
    emit(sb, "payment_intent.amount_capturable_updated" if manual else "payment_intent.succeeded", pi)
    _changed(sb, pi)
    return pi


def authorize_url(sb: Any, pi: Obj) -> str:
    return f"{sb.base_url}/authorize/{pi['id']}?token={secrets.token_urlsafe(16)}"


def _next_action(sb: Any, pi: Obj, pm: Obj, return_url: str | None) -> Obj:
    """Stripe's next action for the method: Alipay's own redirect, a QR code to scan (PayNow), a redirect, or
    Stripe.js's 3-D Secure when a card has no return_url. Each leads to the sandbox's authorize page."""
    url = authorize_url(sb, pi)
    type_ = pm["type"]
    if type_ == "alipay":
        return {"type": "alipay_handle_redirect", "alipay_handle_redirect": {
            "native_data": None, "native_url": None, "return_url": return_url, "url": url}}
    if type_ == "paynow":
        image = f"{sb.base_url}/qr/{pi['id']}"
        # the code holds the authorize page's address: scanning it with a phone opens the test approval
        return {"type": "paynow_display_qr_code", "paynow_display_qr_code": {
            "data": url, "hosted_instructions_url": url, "image_url_png": f"{image}.png",
            "image_url_svg": f"{image}.svg"}}
    if return_url:
        return {"type": "redirect_to_url", "redirect_to_url": {"return_url": return_url, "url": url}}
    # Without a return_url Stripe.js finishes 3-D Secure itself; the page works for it too.
    return {"type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": url, "source": pm["id"]}}


# next action type -> (its field holding the authorize page, its field holding the return_url)
ACTION_URLS = {
    "redirect_to_url": ("url", "return_url"),
    "use_stripe_sdk": ("stripe_js", None),
    "alipay_handle_redirect": ("url", "return_url"),
    "paynow_display_qr_code": ("hosted_instructions_url", None),
}


def _require_action(sb: Any, pi: Obj, pm: Obj, return_url: str | None) -> Obj:
    pi["next_action"] = _next_action(sb, pi, pm, return_url)
    _set_status(sb, pi, "requires_action")
    emit(sb, "payment_intent.requires_action", pi)
    _changed(sb, pi)
    return pi


def action_url(pi: Obj) -> str | None:
    """The authorize page URL of a PaymentIntent waiting for its customer."""
    action = pi.get("next_action") or {}
    fields = ACTION_URLS.get(action.get("type") or "")
    return action[action["type"]][fields[0]] if fields else None


def return_url_of(pi: Obj) -> str | None:
    action = pi.get("next_action") or {}
    fields = ACTION_URLS.get(action.get("type") or "")
    return action[action["type"]][fields[1]] if fields and fields[1] else None


def finish_authentication(sb: Any, pi: Obj, approved: bool) -> Obj:
    """The customer completed (or failed) 3-D Secure or the redirect method's page."""
    pm = sb.store.get(pi["payment_method"], "payment_method")
    assert pm is not None
    if not approved:
        pi["last_payment_error"] = _error_object(pm, "payment_intent_authentication_failure", AUTHENTICATION_FAILED,
                                                 "invalid_request_error")
        pi["payment_method"] = None
        pi["next_action"] = None
        _set_status(sb, pi, "requires_payment_method")
        emit(sb, "payment_intent.payment_failed", pi)
        _changed(sb, pi)
        return pi
    three_d_secure = None
    if pm["type"] == CARD:
        three_d_secure = {"authentication_flow": "challenge", "electronic_commerce_indicator": "05",
                          "exemption_indicator": None, "result": "authenticated", "result_reason": None,
                          "transaction_id": str(uuid.uuid4()), "version": "2.2.0"}
        card = cards.by_fingerprint(pm["card"]["fingerprint"])
        decline = card and (card.decline_after_authentication or card.decline)
        if decline:
            try:
                _decline(sb, pi, pm, decline, three_d_secure)
            except StripeError:
                return pi
    return _authorized(sb, pi, pm, three_d_secure)


# -- bank debits: processing, then settled by a job -----------------------------------------------------------
def _start_processing(sb: Any, pi: Obj, pm: Obj) -> Obj:
    charge = new_charge(sb, pi, pm, status="pending")
    pi["latest_charge"] = charge["id"]
    _set_status(sb, pi, "processing")
    _save_for_future(sb, pi, pm)
    emit(sb, "charge.pending", charge)
    emit(sb, "payment_intent.processing", pi)
    _changed(sb, pi)
    outcome = cards.bank_outcome(pm[pm["type"]]["fingerprint"])
    if not outcome.never_settles:
        due = sb.clock.now() + sb.config.async_settle_seconds + outcome.extra_delay
        pending = dict(sb.store.kv.get(PENDING_SETTLEMENTS, {}))
        pending[pi["id"]] = due
        sb.store.set_kv(PENDING_SETTLEMENTS, pending)
        sb.scheduler.at(due, "payment_intent.settle", pi["id"])
    return pi


@job("payment_intent.settle")
def settle(sb: Any, pi_id: str) -> None:
    pending = dict(sb.store.kv.get(PENDING_SETTLEMENTS, {}))
    if pending.pop(pi_id, None) is not None:
        sb.store.set_kv(PENDING_SETTLEMENTS, pending)
    pi = sb.store.get(pi_id, "payment_intent")
    if pi is None or pi["status"] != "processing":
        return
    charge = sb.store.get(pi["latest_charge"], "charge")
    pm = sb.store.get(pi["payment_method"], "payment_method")
    assert charge is not None and pm is not None
    outcome = cards.bank_outcome(pm[pm["type"]]["fingerprint"])
    if outcome.failure_code:
        mark_failed(sb, charge, outcome.failure_code, outcome.message)
        pi["last_payment_error"] = _error_object(pm, outcome.error_code, outcome.message, "card_error",
                                                 charge=charge["id"])
        pi["payment_method"] = None
        _set_status(sb, pi, "requires_payment_method")
        emit(sb, "charge.failed", charge)
        emit(sb, "payment_intent.payment_failed", pi)
    else:
        mark_paid(sb, charge, charge["amount"])
        pi["amount_received"] = pi["amount"]
        _set_status(sb, pi, "succeeded")
        emit(sb, "charge.succeeded", charge)
        emit(sb, "payment_intent.succeeded", pi)
    _changed(sb, pi)


@on_start
def _reschedule_settlements(sb: Any) -> None:
    for pi_id, due in sb.store.kv.get(PENDING_SETTLEMENTS, {}).items():
        sb.scheduler.at(due, "payment_intent.settle", pi_id)


# -- routes ---------------------------------------------------------------------------------------------------
CREATE_PARAMS = (
    "amount", "currency", "customer", "payment_method", "payment_method_types", "payment_method_data",
    "automatic_payment_methods", "confirm", "metadata", "return_url", "capture_method", "receipt_email",
    "description", "setup_future_usage", "off_session", "statement_descriptor", "statement_descriptor_suffix",
    "shipping", "confirmation_method", "transfer_group", "mandate_data")


def _off_session(p: Params) -> bool:
    raw = p.raw("off_session")
    if raw in ("one_off", "recurring"):
        return True
    return bool(p.bool("off_session", False))


def _common_fields(pi: Obj, p: Params) -> None:
    """Fields settable on create, update and confirm."""
    if "receipt_email" in p:
        pi["receipt_email"] = p.optional_str("receipt_email")
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = p.str("setup_future_usage", choices=("on_session", "off_session", "")) or None
    if "capture_method" in p:
        pi["capture_method"] = p.str("capture_method", choices=CAPTURE_METHODS)
    if "shipping" in p:
        pi["shipping"] = _shipping(p.dict("shipping"))


@route("POST", "/v1/payment_intents", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    amount = _amount(p)
    currency = _currency(p)
    assert amount is not None and currency is not None
    check_minimum(amount, currency)
    customer = _customer_id(sb, p)
    types = _method_types(p) if "payment_method_types" in p else None
    automatic = None
    auto = p.dict("automatic_payment_methods")
    if auto is not None:
        auto.only("enabled", "allow_redirects")
        enabled = auto.bool("enabled")
        if enabled is None:
            raise invalid_request("Missing required param: automatic_payment_methods[enabled].",
                                  param="automatic_payment_methods[enabled]", code="parameter_missing")
        if enabled:
            if types:
                raise invalid_request("You may only specify one of these parameters: automatic_payment_methods, "
                                      "payment_method_types.", param="automatic_payment_methods")
            automatic = {"allow_redirects": auto.str("allow_redirects", "always", choices=("always", "never")),
                         "enabled": True}
        elif types is None:
            types = [CARD]
    confirm = bool(p.bool("confirm", False))
    for name in ("off_session", "return_url"):
        if name in p and not confirm:
            raise invalid_request(f"You passed {name} but did not pass confirm=true; {name} can only be "
                                  "passed when confirm=true.", param=name)
    pi = _build(sb, amount=amount, currency=currency, customer=customer, metadata=merge_metadata({}, p.raw("metadata")),
                payment_method_types=types, automatic=automatic, description=p.optional_str("description"),
                receipt_email=None, capture_method="automatic", setup_future_usage=None)
    _common_fields(pi, p)
    pi["confirmation_method"] = p.str("confirmation_method", "automatic", choices=("automatic", "manual"))
    pi["statement_descriptor"] = p.optional_str("statement_descriptor")
    pi["statement_descriptor_suffix"] = p.optional_str("statement_descriptor_suffix")
    pi["transfer_group"] = p.optional_str("transfer_group")
    pm = _payment_method_from(sb, p)
    return_url, off_session = p.optional_str("return_url"), _off_session(p)
    if pm is not None:
        # A request Stripe would refuse leaves no PaymentIntent behind.
        if confirm:
            _check_confirmable(sb, pi, pm, return_url, off_session)
        else:
            _check_method(sb, pi, pm)
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
    sb.store.add(pi)
    emit(sb, "payment_intent.created", pi)
    if confirm:
        return _confirm(sb, pi, pm, return_url, off_session)
    return pi


@route("GET", "/v1/payment_intents/{pi_id}", params=("client_secret",))
def retrieve(sb: Any, p: Params, pi_id: str) -> Obj:
    pi = get_payment_intent(sb, pi_id)
    secret = p.optional_str("client_secret")
    if secret is not None and secret != pi["client_secret"]:
        raise invalid_request("The client_secret provided does not match the client_secret associated with the "
                              "PaymentIntent.", param="client_secret")
    return pi


@route("POST", "/v1/payment_intents/{pi_id}", params=(
    "amount", "currency", "customer", "description", "metadata", "payment_method", "payment_method_data",
    "payment_method_types", "receipt_email", "setup_future_usage", "capture_method", "shipping",
    "statement_descriptor", "statement_descriptor_suffix", "transfer_group"))
def update(sb: Any, p: Params, pi_id: str) -> Obj:
    pi = get_payment_intent(sb, pi_id)
    always = {"metadata", "description", "receipt_email", "expand"}
    if pi["status"] not in UPDATABLE and any(name not in always for name in p.data):
        raise state_error(
            f"You cannot update this PaymentIntent because it has a status of {pi['status']}. Updates are only "
            "allowed when the status is one of requires_payment_method, requires_confirmation, or "
            "requires_action.", code="payment_intent_unexpected_state")
    status_before = pi["status"]
    with _all_or_nothing(pi):
        _update_fields(sb, pi, p)
    sb.store.save(pi)
    if pi["status"] != status_before:
        _changed(sb, pi)
    return pi


def _update_fields(sb: Any, pi: Obj, p: Params) -> None:
    if "amount" in p:
        pi["amount"] = _amount(p)
    if "currency" in p:
        pi["currency"] = _currency(p)
    if "amount" in p or "currency" in p:
        check_minimum(pi["amount"], pi["currency"])
    if "customer" in p:
        pi["customer"] = _customer_id(sb, p)
    if "description" in p:
        pi["description"] = p.optional_str("description")
    if "metadata" in p:
        pi["metadata"] = merge_metadata(pi["metadata"], p.raw("metadata"))
    if "payment_method_types" in p:
        types = _method_types(p)
        pi["payment_method_types"] = types
        pi["payment_method_options"] = _method_options(types)
        pi["automatic_payment_methods"] = None
    for name in ("statement_descriptor", "statement_descriptor_suffix", "transfer_group"):
        if name in p:
            pi[name] = p.optional_str(name)
    _common_fields(pi, p)
    pm = _payment_method_from(sb, p)
    if pm is not None:
        _check_method(sb, pi, pm)
        pi["payment_method"] = pm["id"]
        pi["next_action"] = None
        pi["status"] = "requires_confirmation"
    elif "payment_method" in p:  # an empty value unsets it
        pi["payment_method"] = None
        pi["status"] = "requires_payment_method"


@route("POST", "/v1/payment_intents/{pi_id}/confirm", params=(
    "payment_method", "payment_method_data", "return_url", "off_session", "receipt_email", "setup_future_usage",
    "capture_method", "shipping", "payment_method_types", "mandate_data", "client_secret"))
def confirm(sb: Any, p: Params, pi_id: str) -> Obj:
    pi = get_payment_intent(sb, pi_id)
    if pi["status"] not in CONFIRMABLE:
        raise _status_error(pi, "confirm", CONFIRMABLE)
    with _all_or_nothing(pi):
        if "payment_method_types" in p:
            types = _method_types(p)
            pi["payment_method_types"] = types
            pi["payment_method_options"] = _method_options(types)
            pi["automatic_payment_methods"] = None
        _common_fields(pi, p)
        pm = _payment_method_from(sb, p)
        return _confirm(sb, pi, pm, p.optional_str("return_url"), _off_session(p))


@route("POST", "/v1/payment_intents/{pi_id}/capture", params=(
    "amount_to_capture", "metadata", "statement_descriptor", "statement_descriptor_suffix", "final_capture"))
def capture(sb: Any, p: Params, pi_id: str) -> Obj:
    pi = get_payment_intent(sb, pi_id)
    if pi["status"] != "requires_capture":
        raise _status_error(pi, "capture", ("requires_capture",))
    capturable = pi["amount_capturable"]
    amount = p.int("amount_to_capture", capturable, minimum=1)
    assert amount is not None
    if amount > capturable:
        raise invalid_request(f"The amount_to_capture ({amount}) must be less than or equal to the amount "
                              f"capturable ({capturable}).", param="amount_to_capture", code="amount_too_large")
    if "metadata" in p:
        pi["metadata"] = merge_metadata(pi["metadata"], p.raw("metadata"))
    charge = sb.store.get(pi["latest_charge"], "charge")
    assert charge is not None
    before = {k: charge[k] for k in ("amount_captured", "amount_refunded", "balance_transaction", "captured")}
    mark_paid(sb, charge, amount)
    # The part not captured is released, which Stripe reports as refunded.
    charge["amount_refunded"] = charge["amount"] - amount
    sb.store.save(charge)
    pi["amount_received"] = amount
    pi["amount_capturable"] = 0
    _set_status(sb, pi, "succeeded")
    emit(sb, "charge.captured", charge, {k: v for k, v in before.items() if charge[k] != v})
    emit(sb, "payment_intent.succeeded", pi)
    _changed(sb, pi)
    return pi


@route("POST", "/v1/payment_intents/{pi_id}/cancel", params=("cancellation_reason",))
def cancel(sb: Any, p: Params, pi_id: str) -> Obj:
    pi = get_payment_intent(sb, pi_id)
    if pi["status"] not in CANCELABLE:
        raise _status_error(pi, "cancel", CANCELABLE)
    reason = p.str("cancellation_reason", choices=CANCELLATION_REASONS)
    if pi["status"] == "requires_capture":
        # The authorization is released: Stripe refunds the uncaptured charge.
        charge = sb.store.get(pi["latest_charge"], "charge")
        if charge is not None:
            before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
            charge["amount_refunded"] = charge["amount"]
            charge["refunded"] = True
            sb.store.save(charge)
            emit(sb, "charge.refunded", charge, before)
        pi["amount_capturable"] = 0
    pi["cancellation_reason"] = reason
    pi["canceled_at"] = sb.clock.now_int()
    pi["next_action"] = None
    _set_status(sb, pi, "canceled")
    emit(sb, "payment_intent.canceled", pi)
    _changed(sb, pi)
    return pi


@route("GET", "/v1/payment_intents", params=(*LIST_PARAMS, "customer", "created"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    low, high = created_filter(p)
    store = sb.store
    collection = (store.collection("payment_intent", "customer", customer) if customer
                  else store.collection("payment_intent"))

    def where(pi: Obj) -> bool:
        return (low is None or pi["created"] >= low) and (high is None or pi["created"] <= high)

    return paginate(store, collection, p, "/v1/payment_intents", where if low is not None or high is not None
                    else None)


# -- Stripe's minimum charge amounts ------------------------------------------------------------------------
# currency -> (minimum in minor units, how Stripe's message writes the amount); docs "Minimum and maximum
# charge amounts". Currencies not listed have no minimum here.
MINIMUM_CHARGE: dict[str, tuple[int, str]] = {
    "usd": (50, "$0.50"), "eur": (50, "€0.50"), "gbp": (30, "£0.30"), "jpy": (50, "¥50"),
    "aud": (50, "$0.50"), "cad": (50, "$0.50"), "nzd": (50, "$0.50"), "sgd": (50, "$0.50"),
    "hkd": (400, "$4.00"), "mxn": (1000, "$10.00"), "chf": (50, "CHF 0.50"), "brl": (50, "R$0.50"),
    "inr": (50, "₹0.50"), "myr": (200, "RM2.00"), "thb": (1000, "฿10.00"), "pln": (200, "2.00 zł"),
    "dkk": (250, "2.50 kr."), "nok": (300, "3.00 kr"), "sek": (300, "3.00 kr"), "czk": (1500, "15.00 Kč"),
    "huf": (17500, "175.00 Ft"), "ron": (200, "2.00 lei"), "bgn": (100, "1.00 лв."), "aed": (200, "2.00 AED"),
}


def check_minimum(amount: int, currency: str, param: str = "amount") -> None:
    """Stripe refuses a charge below its minimum for the currency (a zero amount is a different error)."""
    minimum = MINIMUM_CHARGE.get(currency)
    if minimum is not None and 0 < amount < minimum[0]:
        raise invalid_request(f"Amount must be at least {minimum[1]} {currency}", param=param,
                              code="amount_too_small")
