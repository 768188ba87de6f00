"""SetupIntents, minimal: create, retrieve, update, confirm, cancel, list; made by setup-mode Checkout.

Confirming with a card attaches it to the intent's customer and succeeds. 3-D Secure on setup is not
simulated (every test card's setup succeeds), nor are mandates for bank debits.
"""

from __future__ import annotations

from typing import Any

from .. import hooks
from ..errors import invalid_request, no_such, state_error
from ..events import changed, emit
from ..ids import new_id, new_secret
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer
from .payment_intents import REDIRECTS_NEED_RETURN_URL
from .payment_methods import QR_CODE_TYPES, REDIRECT_TYPES, attach_to_customer, resolve_payment_method

CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def get_setup_intent(sb: Any, setup_intent_id: str, param: str = "intent") -> Obj:
    si = sb.store.get(setup_intent_id, "setup_intent")
    if si is None:
        raise no_such("setup_intent", setup_intent_id, param)
    return si


def _payment_method(sb: Any, pm_id: str, param: str = "payment_method") -> Obj:
    """A stored PaymentMethod, or a fresh one for a test id such as ``pm_card_visa`` (as Stripe makes)."""
    return resolve_payment_method(sb, pm_id, param)


def new_setup_intent(sb: Any, *, customer: str | None = None, payment_method_types: list[str] | None = None,
                     metadata: dict[str, str] | None = None, description: str | None = None,
                     usage: str = "off_session") -> Obj:
    si_id = new_id("seti", 24)
    si: Obj = {
        "id": si_id,
        "object": "setup_intent",
        "allowed_payment_method_types": None,
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{si_id}_secret_{new_secret('', 25)[1:]}",
        "created": sb.clock.now_int(),
        "customer": customer,
        "description": description,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": dict(metadata or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": list(payment_method_types or ["card"]),
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": usage,
    }
    sb.store.add(si)
    emit(sb, "setup_intent.created", si)
    return si


def _set_payment_method(sb: Any, si: Obj, pm_id: str | None) -> None:
    if pm_id is None:
        return
    pm = _payment_method(sb, pm_id)
    si["payment_method"] = pm["id"]
    if si["status"] == "requires_payment_method":
        si["status"] = "requires_confirmation"


def check_return_url(sb: Any, si: Obj, return_url: str | None) -> None:
    """Stripe's ``return_url`` rule on a confirmation through the API: automatic payment methods that may
    redirect need one whatever the method (the error carries the SetupIntent, no code or param); a method that
    redirects to authorize needs one (``param=return_url``)."""
    if return_url:
        return
    automatic = si["automatic_payment_methods"] or {}
    if automatic.get("enabled") and automatic.get("allow_redirects") != "never":
        raise invalid_request(REDIRECTS_NEED_RETURN_URL, setup_intent=dict(si))
    pm = sb.store.get(si["payment_method"] or "", "payment_method")
    type_ = (pm or {}).get("type")
    if type_ in REDIRECT_TYPES and type_ not in QR_CODE_TYPES:
        raise invalid_request(
            f"A `return_url` must be specified because this SetupIntent uses a payment method ({type_}) that "
            "redirects the customer to authorize the payment.", param="return_url")


def confirm_setup_intent(sb: Any, si: Obj, pm_id: str | None = None) -> Obj:
    if si["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise state_error(
            f"You cannot confirm this SetupIntent because it has a status of {si['status']}.",
            code="setup_intent_unexpected_state")
    _set_payment_method(sb, si, pm_id)
    if si["payment_method"] is None:
        raise invalid_request(
            "You cannot confirm this SetupIntent because it's missing a payment method. Update the "
            "SetupIntent with a payment method and then confirm it again.", param="payment_method",
            code="setup_intent_unexpected_state")
    if si["customer"]:
        pm = sb.store.get(si["payment_method"], "payment_method")
        if pm is not None and pm.get("customer") != si["customer"]:
            customer = get_customer(sb, si["customer"])
            attach_to_customer(sb, si["payment_method"], customer)
    si["status"] = "succeeded"
    si["last_setup_error"] = None
    sb.store.save(si)
    emit(sb, "setup_intent.succeeded", si)
    hooks.setup_intent_changed(sb, si)
    return si


CREATE_PARAMS = ("customer", "payment_method", "payment_method_types", "metadata", "description", "usage",
                 "confirm", "return_url", "automatic_payment_methods", "payment_method_options",
                 "mandate_data",
                 "on_behalf_of", "attach_to_self", "flow_directions", "single_use", "use_stripe_sdk",
                 "excluded_payment_method_types", "payment_method_configuration")


@route("POST", "/v1/setup_intents", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    if customer is not None:
        get_customer(sb, customer)
    automatic = p.dict("automatic_payment_methods")
    types = p.str_list("payment_method_types") or ["card"]
    si = new_setup_intent(
        sb, customer=customer, payment_method_types=types, metadata=merge_metadata({}, p.raw("metadata")),
        description=p.optional_str("description"),
        usage=p.str("usage", "off_session", choices=("off_session", "on_session")) or "off_session")
    if automatic is not None:
        si["automatic_payment_methods"] = {"allow_redirects": automatic.str("allow_redirects", "always"),
                                           "enabled": automatic.bool("enabled", False)}
    _set_payment_method(sb, si, p.optional_str("payment_method"))
    sb.store.save(si)
    if p.bool("confirm", False):
        check_return_url(sb, si, p.optional_str("return_url"))
        confirm_setup_intent(sb, si)
    return si


@route("GET", "/v1/setup_intents/{intent}", params=("client_secret",))
def retrieve(sb: Any, p: Params, intent: str) -> Obj:
    return get_setup_intent(sb, intent)


@route("POST", "/v1/setup_intents/{intent}", params=(
    "customer", "payment_method", "payment_method_types", "metadata", "description", "flow_directions",
    "payment_method_options", "attach_to_self", "excluded_payment_method_types",
    "payment_method_configuration"))
def update(sb: Any, p: Params, intent: str) -> Obj:
    si = get_setup_intent(sb, intent)
    before = dict(si)
    if "customer" in p:
        customer = p.optional_str("customer")
        if customer is not None:
            get_customer(sb, customer)
        si["customer"] = customer
    if "description" in p:
        si["description"] = p.optional_str("description")
    if "metadata" in p:
        si["metadata"] = merge_metadata(si["metadata"], p.raw("metadata"))
    if "payment_method_types" in p:
        si["payment_method_types"] = p.str_list("payment_method_types") or ["card"]
    if "payment_method" in p:
        _set_payment_method(sb, si, p.optional_str("payment_method"))
    sb.store.save(si)
    previous = changed(si, before)
    if previous:
        emit(sb, "setup_intent.updated", si, previous)
    return si


@route("POST", "/v1/setup_intents/{intent}/confirm", params=(
    "payment_method", "return_url", "mandate_data", "payment_method_options", "payment_method_data",
    "use_stripe_sdk", "client_secret", "confirmation_token"))
def confirm(sb: Any, p: Params, intent: str) -> Obj:
    si = get_setup_intent(sb, intent)
    if "payment_method" in p:
        _set_payment_method(sb, si, p.optional_str("payment_method"))
    check_return_url(sb, si, p.optional_str("return_url"))
    return confirm_setup_intent(sb, si)


@route("POST", "/v1/setup_intents/{intent}/cancel", params=("cancellation_reason",))
def cancel(sb: Any, p: Params, intent: str) -> Obj:
    si = get_setup_intent(sb, intent)
    if si["status"] not in CANCELABLE:
        raise state_error(f"You cannot cancel this SetupIntent because it has a status of {si['status']}.",
                          code="setup_intent_unexpected_state")
    si["status"] = "canceled"
    si["cancellation_reason"] = p.str("cancellation_reason", choices=("abandoned", "duplicate",
                                                                      "requested_by_customer"))
    sb.store.save(si)
    emit(sb, "setup_intent.canceled", si)
    hooks.setup_intent_changed(sb, si)
    return si


@route("GET", "/v1/setup_intents", params=(*LIST_PARAMS, "customer", "payment_method", "created",
                                          "attach_to_self"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    payment_method = p.optional_str("payment_method")

    def where(si: Obj) -> bool:
        return ((customer is None or si["customer"] == customer)
                and (payment_method is None or si["payment_method"] == payment_method))

    return paginate(sb.store, sb.store.collection("setup_intent"), p, "/v1/setup_intents", where)
