"""Checkout Sessions: create (modes ``payment``, ``subscription`` and ``setup``), retrieve, update (metadata),
list, line items, expire.

The hosted page that pays a session lives in ``checkout_page``; completing a session when its PaymentIntent
succeeds (wherever that happened) is ``checkout_flow``, and ``checkout_subscription`` for subscription mode.
Coupons and promotion codes (``discounts``, or a code typed on the page) go through ``checkout_discounts``.
The create parameters are checked in ``checkout_session_params``; this module builds and stores the session.
Things a session needs that are not part of its API shape (line items, ``payment_intent_data``, what the payer
typed) are kept in one private store object per session, ``checkout_extras`` (``checkout_records``), so the
session dict stays exactly what the API returns.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import expand, scheduler
from ..errors import invalid_request, no_such, state_error
from ..events import emit
from .events import created_filter
from ..ids import new_id
from ..listing import LIST_PARAMS, list_object, paginate
from ..params import Params, merge_metadata
from ..routing import on_start, route
from ..store import Obj
from ..billing.discounts import resolve_discounts
from .checkout_discounts import refresh_totals, session_discount
from .checkout_records import EXTRAS_TYPE, extras_id, get_session, line_items
from .checkout_tax import automatic_tax
from . import checkout_session_params as checked, payment_intents
from .prices import get_price, new_price

EXPIRE_JOB = "checkout.session.expire"

CREATE_PARAMS = (
    "mode", "line_items", "customer", "customer_email", "customer_creation", "customer_update",
    "client_reference_id", "metadata", "payment_intent_data", "setup_intent_data", "success_url",
    "cancel_url",
    "payment_method_types", "allow_promotion_codes", "expires_at", "locale", "submit_type",
    "billing_address_collection", "ui_mode", "currency", "automatic_tax", "phone_number_collection",
    "consent_collection", "custom_text", "payment_method_collection", "invoice_creation", "discounts",
    "shipping_address_collection", "tax_id_collection", "after_expiration", "payment_method_options",
    "saved_payment_method_options", "subscription_data", "origin_context", "excluded_payment_method_types",
    "shipping_options",
)


@expand.expandable("checkout.session", "line_items")
def _expand_line_items(sb: Any, session: Obj) -> Obj:
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    items = line_items(sb, session)
    return list_object(url, items[:10], len(items) > 10)


# -- create ------------------------------------------------------------------------------------------

def _line_item(sb: Any, p: Params, mode: str) -> Obj:
    p.only("price", "price_data", "quantity", "adjustable_quantity", "tax_rates", "dynamic_tax_rates",
           "metadata")
    price = _line_item_price(sb, p, mode)
    quantity = p.int("quantity", required=True, minimum=0, maximum=999_999)
    assert quantity is not None
    adjustable_quantity = _adjustable_quantity(p.dict("adjustable_quantity"))
    product = sb.store.get(price["product"], "product")
    amount = price["unit_amount"] * quantity
    return {
        "id": new_id("li", 24),
        "object": "item",
        "adjustable_quantity": adjustable_quantity,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": product["name"] if product else None,
        "metadata": merge_metadata({}, p.raw("metadata"), p._name("metadata")),
        "price": price["id"],
        "quantity": quantity,
    }


def _line_item_price(sb: Any, p: Params, mode: str) -> Obj:
    """The line item's ``price``, or the archived price made from its ``price_data``, fit for ``mode``."""
    price_id = p.optional_str("price")
    price_data = p.dict("price_data")
    if price_id and price_data is not None:
        raise invalid_request("You may only specify one of these parameters: price, price_data.",
                              param=p._name("price_data"))
    if price_id:
        price = get_price(sb, price_id, p._name("price"))
        if not price["active"]:
            raise invalid_request(
                f"The price specified ({price_id}) is inactive. This field only accepts active prices.",
                param=p._name("price"))
    elif price_data is not None:
        price = _price_for_session(sb, price_data)
    else:
        raise invalid_request("You must specify either `price` or `price_data` for each line item.",
                              param=p._name("price"))
    named = p._name("price") if price_id else p._name("price_data")
    if mode == "payment" and price["type"] == "recurring":
        raise invalid_request(
            "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
            "mode or use only one-time prices.", param=named)
    if mode == "subscription" and price["type"] != "recurring":
        # Stripe adds one-time prices to the first invoice; the subscription engine has no
        # ``add_invoice_items`` yet, so the sandbox refuses them rather than dropping them.
        raise invalid_request("The sandbox's Checkout in `subscription` mode takes recurring prices only.",
                              param=named)
    if price["unit_amount"] is None:
        raise invalid_request("Prices with custom amounts are not supported in the sandbox's Checkout.",
                              param=p._name("price"))
    return price


def _price_for_session(sb: Any, price_data: Params) -> Obj:
    price_data.only("currency", "product", "product_data", "unit_amount", "unit_amount_decimal",
                    "recurring", "tax_behavior")
    product_data = price_data.dict("product_data")
    if product_data is not None:
        product_data.only("name", "description", "images", "metadata", "tax_code", "unit_label")
    price = new_price(sb, price_data, emit_event=False)
    # Prices made from price_data serve this one session: Stripe creates them archived.
    price["active"] = False
    sb.store.save(price)
    return price


def _adjustable_quantity(adjustable: Params | None) -> Obj | None:
    if adjustable is None:
        return None
    adjustable.only("enabled", "maximum", "minimum")
    return {"enabled": bool(adjustable.bool("enabled", False)),
            "maximum": adjustable.int("maximum", minimum=1, maximum=999_999),
            "minimum": adjustable.int("minimum", minimum=0, maximum=999_999)}


def session_url(sb: Any, session_id: str) -> str:
    return f"{sb.base_url}/c/pay/{session_id}"


# The session object in Stripe's field order, with the values a new hosted session starts with; ``_new_session``
# fills in the rest from the request.
_SESSION_FIELDS: Obj = {
    "id": None, "object": "checkout.session", "adaptive_pricing": {"enabled": False}, "after_expiration": None,
    "allow_promotion_codes": None, "allowed_payment_method_types": None, "amount_subtotal": None,
    "amount_total": None, "automatic_tax": None, "billing_address_collection": None, "cancel_url": None,
    "client_reference_id": None, "client_secret": None, "collected_information": None, "consent": None,
    "consent_collection": None, "created": None, "currency": None, "currency_conversion": None,
    "custom_fields": [],
    "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                    "terms_of_service_acceptance": None},
    "customer": None, "customer_account": None, "customer_creation": None, "customer_details": None,
    "customer_email": None, "discounts": [], "expires_at": None, "integration_identifier": None, "invoice": None,
    "invoice_creation": None, "livemode": False, "locale": None, "managed_payments": None, "metadata": {},
    "mode": None, "origin_context": None,
    "payment_intent": None,  # created when the customer pays, as in current API versions
    "payment_link": None, "payment_method_collection": None, "payment_method_configuration_details": None,
    "payment_method_options": {}, "payment_method_types": [], "payment_status": None, "permissions": None,
    "phone_number_collection": None, "recovered_from": None, "saved_payment_method_options": None,
    "setup_intent": None, "shipping_address_collection": None, "shipping_cost": None, "shipping_options": [],
    "status": "open", "submit_type": None, "subscription": None, "success_url": None, "tax_id_collection": None,
    "total_details": None, "ui_mode": "hosted_page", "url": None, "wallet_options": None,
}
_PAYMENT_MODE_INVOICE_CREATION: Obj = {
    "enabled": False,
    "invoice_data": {"account_tax_ids": None, "custom_fields": None, "description": None, "footer": None,
                     "issuer": None, "metadata": {}, "rendering_options": None},
}


@route("POST", "/v1/checkout/sessions", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    mode = checked.mode(p)
    success_url = checked.success_url(p)
    checked.refuse_unsimulated(p)
    items = [_line_item(sb, item, mode) for item in p.dict_list("line_items")]
    currency = checked.currency(sb, p, mode, items)
    customer_id, customer_email, customer_creation = checked.customer(sb, p)
    payment_method_types = checked.payment_method_types(p, mode)
    # ``if_required`` lets a subscription that costs nothing today (trial, 100 % off) start without a card.
    collection = p.str("payment_method_collection", "always", choices=("always", "if_required"))
    now = sb.clock.now_int()
    expires_at = checked.expires_at(p, now)
    subscription_data = checked.subscription_data(p, mode, now)
    session_id = new_id("cs_test", 58)
    subtotal = checked.subtotal(items, mode)
    discounts = checked.discounts(p, mode)
    customer = sb.store.objects[customer_id] if customer_id else None
    # Checked now, redeemed when the session completes (a session that expires redeems nothing).
    redemptions = resolve_discounts(sb, discounts, customer=customer, amount=subtotal, currency=currency)
    session = _new_session(sb, p, customer, {
        "id": session_id, "amount_subtotal": subtotal, "amount_total": subtotal, "created": now,
        "currency": currency, "customer": customer_id, "customer_creation": customer_creation,
        "customer_email": customer_email, "discounts": [session_discount(r) for r in redemptions],
        "expires_at": expires_at, "mode": mode, "payment_method_collection": collection,
        "payment_method_types": payment_method_types, "success_url": success_url,
    })
    sb.store.add(session)
    sb.store.add({
        "id": extras_id(session_id),
        "object": EXTRAS_TYPE,
        "line_items": items,
        "payment_intent_data": checked.payment_intent_data(p),
        "setup_intent_data": checked.setup_intent_data(p),
        "subscription_data": subscription_data,
        "payer": None,  # what the payer typed on the hosted page: email, name, customer made for them
        "subscription": None,  # subscription mode: the subscription made at the first attempt to pay
        "tax_location": None,  # automatic tax: the billing address and tax IDs typed on the page
        "customer_update_address": checked.customer_update(p) == "auto",
    })
    refresh_totals(sb, session)
    sb.scheduler.at(expires_at, EXPIRE_JOB, session_id)
    return session


def _new_session(sb: Any, p: Params, customer: Obj | None, known: Obj) -> Obj:
    """The session object from the values ``create`` checked (``known``) and the parameters that only show on
    it, read in the API's order."""
    mode = known["mode"]
    session = copy.deepcopy(_SESSION_FIELDS)
    session.update(known)
    session.update({
        "allow_promotion_codes": p.bool("allow_promotion_codes"),
        "automatic_tax": automatic_tax(sb, p, mode, customer),
        "billing_address_collection": p.str("billing_address_collection", choices=("auto", "required")),
        "cancel_url": p.optional_str("cancel_url"),
        "client_reference_id": p.optional_str("client_reference_id"),
        "invoice_creation": copy.deepcopy(_PAYMENT_MODE_INVOICE_CREATION) if mode == "payment" else None,
        "locale": p.str("locale", choices=checked.LOCALES),
        "metadata": merge_metadata({}, p.raw("metadata")),
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "phone_number_collection": {"enabled": bool((p.dict("phone_number_collection") or Params({})).bool(
            "enabled", False))},
        "submit_type": p.str("submit_type", choices=("auto", "book", "donate", "pay", "subscribe")),
        "tax_id_collection": {"enabled": bool((p.dict("tax_id_collection") or Params({})).only(
            "enabled", "required").bool("enabled", False)), "required": "never"},
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        if mode != "setup" else None,
        "url": session_url(sb, known["id"]),
    })
    return session


# -- read --------------------------------------------------------------------------------------------

@route("GET", "/v1/checkout/sessions/{session_id}")
def retrieve(sb: Any, p: Params, session_id: str) -> Obj:
    return get_session(sb, session_id, "id")


# Stripe lets hosted sessions change only their metadata (at any status); the other update parameters are for
# ``embedded_page`` / ``elements`` sessions, or change the amount due, which the sandbox does not simulate.
_UPDATE_ONLY_EMBEDDED = ("collected_information", "line_items", "payment_intent_data", "shipping_options")


@route("POST", "/v1/checkout/sessions/{session_id}", params=("metadata", *_UPDATE_ONLY_EMBEDDED))
def update(sb: Any, p: Params, session_id: str) -> Obj:
    session = get_session(sb, session_id, "id")
    for name in _UPDATE_ONLY_EMBEDDED:
        if name in p:
            raise invalid_request(
                f"`{name}` can only be updated on Checkout Sessions with `ui_mode` of `embedded_page` or "
                "`elements`; this session is `hosted`.", param=name)
    if "metadata" in p:
        session["metadata"] = merge_metadata(session["metadata"], p.raw("metadata"))
        sb.store.save(session)
    return session  # Stripe has no ``checkout.session.updated`` event


@route("GET", "/v1/checkout/sessions", params=(
    *LIST_PARAMS, "payment_intent", "customer", "status", "customer_details", "created", "payment_link",
    "subscription", "customer_account"))
def list_(sb: Any, p: Params) -> Obj:
    payment_intent = p.optional_str("payment_intent")
    customer = p.optional_str("customer")
    status = p.str("status", choices=("open", "complete", "expired"))
    details = p.dict("customer_details")
    email = details.only("email").str("email", required=True) if details is not None else None
    low, high = created_filter(p)
    store = sb.store
    if payment_intent:
        collection = store.collection("checkout.session", "payment_intent", payment_intent)
    elif customer:
        collection = store.collection("checkout.session", "customer", customer)
    else:
        collection = store.collection("checkout.session")

    def where(session: Obj) -> bool:
        return ((status is None or session["status"] == status)
                and (customer is None or session["customer"] == customer)
                and (email is None or (session["customer_details"] or {}).get("email") == email)
                and (low is None or session["created"] >= low) and (high is None or session["created"] <= high))

    return paginate(store, collection, p, "/v1/checkout/sessions", where)


@route("GET", "/v1/checkout/sessions/{session_id}/line_items", params=LIST_PARAMS)
def list_line_items(sb: Any, p: Params, session_id: str) -> Obj:
    session = get_session(sb, session_id, "id")
    items = line_items(sb, session)
    limit = p.int("limit", 10, minimum=1, maximum=100)
    assert limit is not None
    starting_after = p.optional_str("starting_after")
    ending_before = p.optional_str("ending_before")
    ids = [item["id"] for item in items]
    for name, cursor in (("starting_after", starting_after), ("ending_before", ending_before)):
        if cursor is not None and cursor not in ids:
            raise no_such("line item", cursor, name)
    # Line items keep the order they were given in.
    if starting_after:
        window = items[ids.index(starting_after) + 1:]
        page, has_more = window[:limit], len(window) > limit
    elif ending_before:
        window = items[:ids.index(ending_before)]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return list_object(f"/v1/checkout/sessions/{session_id}/line_items", page, has_more)


# -- expiry ------------------------------------------------------------------------------------------

def expire_session(sb: Any, session: Obj) -> Obj:
    session["status"] = "expired"
    session["url"] = None
    sb.store.save(session)
    _cancel_abandoned_payment_intent(sb, session)
    emit(sb, "checkout.session.expired", session)
    return session


def _cancel_abandoned_payment_intent(sb: Any, session: Obj) -> None:
    """Stripe cancels the PaymentIntent of a session that expires unpaid."""
    pi = sb.store.get(session["payment_intent"] or "", "payment_intent")
    if pi is None or pi["status"] not in ("requires_payment_method", "requires_confirmation",
                                          "requires_action"):
        return
    payment_intents.cancel(sb, Params({"cancellation_reason": "abandoned"}), pi["id"])


@route("POST", "/v1/checkout/sessions/{session_id}/expire")
def expire(sb: Any, p: Params, session_id: str) -> Obj:
    session = get_session(sb, session_id, "id")
    if session["status"] != "open":
        raise state_error(
            "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a "
            f"status of \"{session['status']}\".")
    return expire_session(sb, session)


@scheduler.job(EXPIRE_JOB)
def _expire_due(sb: Any, session_id: str) -> None:
    session = sb.store.get(session_id, "checkout.session")
    if session is None or session["status"] != "open":
        return
    if session["expires_at"] > sb.clock.now():  # re-scheduled on restart; this run is early
        sb.scheduler.at(session["expires_at"], EXPIRE_JOB, session_id)
        return
    expire_session(sb, session)


@on_start
def _schedule_expiries(sb: Any) -> None:
    """After a restart (``--data``), open sessions must still expire on time."""
    store = sb.store
    for session_id in store.collection("checkout.session").ids:
        session = store.objects[session_id]
        if session["status"] == "open":
            sb.scheduler.at(session["expires_at"], EXPIRE_JOB, session_id)
