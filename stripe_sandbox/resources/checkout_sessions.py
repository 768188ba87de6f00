"""Checkout Sessions: create (modes ``payment``, ``subscription`` and ``setup``), retrieve, update (metadata),
list, line items, expire.

The hosted page that pays a session lives in ``checkout_page``; completing a session when its PaymentIntent
succeeds (wherever that happened) is ``checkout_flow``, and ``checkout_subscription`` for subscription mode.
Coupons and promotion codes (``discounts``, or a code typed on the page) go through ``checkout_discounts``.
Things a session needs that are not part of its API shape (line items, ``payment_intent_data``, what the payer
typed) are kept in one private store object per session, ``checkout_extras``, so the session dict stays exactly
what the API returns.
"""

from __future__ import annotations

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
from ..billing import subscriptions as subs
from ..billing.discounts import resolve_discounts
from .checkout_discounts import refresh_totals, session_discount
from .checkout_records import EXTRAS_TYPE, extras_id, get_session, line_items
from .checkout_tax import automatic_tax
from .customer_records import get_customer
from . import payment_intents
from .payment_methods import ONE_TIME_TYPES
from .prices import get_price, new_price

MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60
# A client computes expires_at from its own clock; allow for the request's travel time.
LIFETIME_SLACK = 10
MAX_LINE_ITEMS = 100
MAX_AMOUNT = 99_999_999
EXPIRE_JOB = "checkout.session.expire"

LOCALES = ("auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
           "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
           "pt-BR", "ro", "ru",
           "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW")
PI_DATA_FIELDS = ("metadata", "description", "receipt_email", "capture_method", "setup_future_usage",
                  "statement_descriptor", "statement_descriptor_suffix", "shipping", "on_behalf_of",
                  "transfer_data", "transfer_group", "application_fee_amount")

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
SUBSCRIPTION_DATA_FIELDS = ("trial_period_days", "trial_end", "metadata", "description", "trial_settings")
# Stripe's minimum trial when ``subscription_data[trial_end]`` is given.
MIN_TRIAL_END = 48 * 3600


@expand.expandable("checkout.session", "line_items")
def _expand_line_items(sb: Any, session: Obj) -> Obj:
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    items = line_items(sb, session)
    return list_object(url, items[:10], len(items) > 10)


# -- create ------------------------------------------------------------------------------------------

def _line_item(sb: Any, p: Params, mode: str) -> Obj:
    p.only("price", "price_data", "quantity", "adjustable_quantity", "tax_rates", "dynamic_tax_rates",
           "metadata")
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
        price_data.only("currency", "product", "product_data", "unit_amount", "unit_amount_decimal",
                        "recurring", "tax_behavior")
        product_data = price_data.dict("product_data")
        if product_data is not None:
            product_data.only("name", "description", "images", "metadata", "tax_code", "unit_label")
        price = new_price(sb, price_data, emit_event=False)
        # Prices made from price_data serve this one session: Stripe creates them archived.
        price["active"] = False
        sb.store.save(price)
    else:
        raise invalid_request("You must specify either `price` or `price_data` for each line item.",
                              param=p._name("price"))
    if mode == "payment" and price["type"] == "recurring":
        raise invalid_request(
            "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
            "mode or use only one-time prices.",
            param=p._name("price") if price_id else p._name("price_data"))
    if mode == "subscription" and price["type"] != "recurring":
        # Stripe adds one-time prices to the first invoice; the subscription engine has no
        # ``add_invoice_items`` yet, so the sandbox refuses them rather than dropping them.
        raise invalid_request("The sandbox's Checkout in `subscription` mode takes recurring prices only.",
                              param=p._name("price") if price_id else p._name("price_data"))
    if price["unit_amount"] is None:
        raise invalid_request("Prices with custom amounts are not supported in the sandbox's Checkout.",
                              param=p._name("price"))
    quantity = p.int("quantity", required=True, minimum=0, maximum=999_999)
    assert quantity is not None
    adjustable = p.dict("adjustable_quantity")
    adjustable_quantity = None
    if adjustable is not None:
        adjustable.only("enabled", "maximum", "minimum")
        adjustable_quantity = {"enabled": bool(adjustable.bool("enabled", False)),
                               "maximum": adjustable.int("maximum", minimum=1, maximum=999_999),
                               "minimum": adjustable.int("minimum", minimum=0, maximum=999_999)}
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


def _expires_at(sb: Any, p: Params, now: int) -> int:
    expires_at = p.int("expires_at")
    if expires_at is None:
        return now + MAX_LIFETIME
    if expires_at > now + MAX_LIFETIME + LIFETIME_SLACK:
        raise invalid_request(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at")
    if expires_at < now + MIN_LIFETIME - LIFETIME_SLACK:
        raise invalid_request(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            param="expires_at")
    return expires_at


def _payment_intent_data(p: Params) -> Obj:
    data = p.dict("payment_intent_data")
    if data is None:
        return {}
    data.only(*PI_DATA_FIELDS)
    out: Obj = {"metadata": merge_metadata({}, data.raw("metadata"), "payment_intent_data[metadata]")}
    out["description"] = data.optional_str("description")
    out["receipt_email"] = data.optional_str("receipt_email")
    out["capture_method"] = data.str("capture_method", "automatic",
                                     choices=("automatic", "automatic_async", "manual"))
    out["setup_future_usage"] = data.str("setup_future_usage", choices=("off_session", "on_session"))
    return out


def _setup_intent_data(p: Params) -> Obj:
    data = p.dict("setup_intent_data")
    if data is None:
        return {}
    data.only("metadata", "description", "on_behalf_of")
    return {"metadata": merge_metadata({}, data.raw("metadata"), "setup_intent_data[metadata]"),
            "description": data.optional_str("description")}


def _subscription_data(p: Params, mode: str, now: int) -> Obj:
    data = p.dict("subscription_data")
    if data is None:
        return {}
    if mode != "subscription":
        raise invalid_request("`subscription_data` can only be used in `subscription` mode.",
                              param="subscription_data")
    data.only(*SUBSCRIPTION_DATA_FIELDS)
    days = data.int("trial_period_days", minimum=1, maximum=730)
    trial_end = data.int("trial_end")
    if days is not None and trial_end is not None:
        raise invalid_request("You may only specify one of these parameters: trial_end, trial_period_days.",
                              param="subscription_data[trial_end]")
    if trial_end is not None and trial_end < now + MIN_TRIAL_END - LIFETIME_SLACK:
        raise invalid_request("`subscription_data[trial_end]` must be at least 48 hours in the future.",
                              param="subscription_data[trial_end]")
    out: Obj = {"metadata": merge_metadata({}, data.raw("metadata"), "subscription_data[metadata]"),
                "description": data.optional_str("description"), "trial_period_days": days,
                "trial_end": trial_end}
    settings = data.dict("trial_settings")
    if settings is not None:
        behavior = settings.only("end_behavior").dict("end_behavior", required=True)
        assert behavior is not None
        out["trial_settings"] = {"end_behavior": {"missing_payment_method": behavior.only(
            "missing_payment_method").str("missing_payment_method", required=True,
                                          choices=("cancel", "create_invoice", "pause"))}}
    return out


def _payment_method_types(p: Params, mode: str) -> list[str]:
    types = p.str_list("payment_method_types") or ["card"]
    if mode == "subscription":
        for i, type_ in enumerate(types):
            if type_ in ONE_TIME_TYPES:
                # Recurring payments need a reusable method; these can pay once only.
                raise invalid_request(
                    f"The payment method type `{type_}` cannot be used in `subscription` mode: it does not "
                    "support recurring payments.", param=f"payment_method_types[{i}]")
    return types


def _refuse_unsimulated(p: Params) -> None:
    """Options that would change the amount due are refused rather than silently ignored."""
    if p.list("shipping_options"):
        raise invalid_request("The sandbox's Checkout does not charge shipping yet.",
                              param="shipping_options")


def _customer_update(p: Params) -> str | None:
    update = p.dict("customer_update")
    return update.only("address", "name", "shipping").str("address", choices=("auto", "never")) if update else None


def session_url(sb: Any, session_id: str) -> str:
    return f"{sb.base_url}/c/pay/{session_id}"


@route("POST", "/v1/checkout/sessions", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    mode = p.str("mode", required=True, choices=("payment", "setup", "subscription"))
    # the pinned API version's names (``hosted``, ``embedded`` and ``custom`` before it)
    ui_mode = p.str("ui_mode", "hosted_page", choices=("elements", "embedded_page", "form", "hosted_page"))
    if ui_mode != "hosted_page":
        raise invalid_request("The sandbox only serves hosted Checkout (`ui_mode=hosted_page`).", param="ui_mode")
    success_url = p.optional_str("success_url")
    if success_url is None:
        raise invalid_request("Missing required param: success_url.", param="success_url",
                              code="parameter_missing")
    for name, url in (("success_url", success_url), ("cancel_url", p.optional_str("cancel_url"))):
        if url is not None and not url.startswith(("http://", "https://")):
            raise invalid_request(f"Not a valid URL: {name} must start with http:// or https://.", param=name)

    _refuse_unsimulated(p)
    items = [_line_item(sb, item, mode) for item in p.dict_list("line_items")]
    currency = (p.optional_str("currency") or "").lower() or None
    if mode in ("payment", "subscription"):
        if not items:
            raise invalid_request(f"line_items is required in `{mode}` mode.", param="line_items",
                                  code="parameter_missing")
        if len(items) > MAX_LINE_ITEMS:
            raise invalid_request(f"You may pass at most {MAX_LINE_ITEMS} line items.", param="line_items")
        currencies = {item["currency"] for item in items}
        if currency is not None:
            currencies.add(currency)
        if len(currencies) > 1:
            raise invalid_request(
                "All line items must use the same currency: a Checkout Session has one currency "
                f"(got {', '.join(sorted(currencies))}).", param="line_items")
        currency = currencies.pop()
        if mode == "subscription":
            subs.check_intervals([sb.store.objects[item["price"]] for item in items], "line_items")
    elif items:
        raise invalid_request("You cannot pass `line_items` in `setup` mode.", param="line_items")

    customer_id = p.optional_str("customer")
    customer_email = p.optional_str("customer_email")
    if customer_id is not None:
        get_customer(sb, customer_id, "customer")
        if customer_email is not None:
            raise invalid_request("You may only specify one of these parameters: customer, customer_email.",
                                  param="customer_email")
    customer_creation = p.str("customer_creation", choices=("always", "if_required"))
    if customer_creation is not None and customer_id is not None:
        raise invalid_request("You may only specify one of these parameters: customer, customer_creation.",
                              param="customer_creation")
    payment_method_types = _payment_method_types(p, mode)
    # ``if_required`` lets a subscription that costs nothing today (trial, 100 % off) start without a card.
    collection = p.str("payment_method_collection", "always", choices=("always", "if_required"))

    now = sb.clock.now_int()
    expires_at = _expires_at(sb, p, now)
    subscription_data = _subscription_data(p, mode, now)
    session_id = new_id("cs_test", 58)
    subtotal = sum(item["amount_subtotal"] for item in items) if mode != "setup" else None
    if subtotal is not None and subtotal > MAX_AMOUNT:
        raise invalid_request("The total amount of the line items is too large.", param="line_items")
    discounts = p.dict_list("discounts")
    if discounts and p.bool("allow_promotion_codes"):
        raise invalid_request("You may only specify one of these parameters: allow_promotion_codes, discounts.",
                              param="discounts")
    if discounts and mode == "setup":
        raise invalid_request("`discounts` cannot be used in `setup` mode.", param="discounts")
    if len(discounts) > 1:
        raise invalid_request("Checkout Sessions accept one discount only.", param="discounts")
    customer = sb.store.objects[customer_id] if customer_id else None
    # Checked now, redeemed when the session completes (a session that expires redeems nothing).
    redemptions = resolve_discounts(sb, discounts, customer=customer, amount=subtotal, currency=currency)
    session: Obj = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": p.bool("allow_promotion_codes"),
        "allowed_payment_method_types": None,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": automatic_tax(sb, p, mode, customer),
        "billing_address_collection": p.str("billing_address_collection", choices=("auto", "required")),
        "cancel_url": p.optional_str("cancel_url"),
        "client_reference_id": p.optional_str("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": customer_creation,
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [session_discount(r) for r in redemptions],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {"account_tax_ids": None, "custom_fields": None, "description": None,
                             "footer": None, "issuer": None, "metadata": {}, "rendering_options": None},
        } if mode == "payment" else None,
        "livemode": False,
        "locale": p.str("locale", choices=LOCALES),
        "managed_payments": None,
        "metadata": merge_metadata({}, p.raw("metadata")),
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,  # created when the customer pays, as in current API versions
        "payment_link": None,
        "payment_method_collection": collection,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": payment_method_types,
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": bool((p.dict("phone_number_collection") or Params({})).bool(
            "enabled", False))},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": p.str("submit_type", choices=("auto", "book", "donate", "pay", "subscribe")),
        "subscription": None,
        "success_url": success_url,
        "tax_id_collection": {"enabled": bool((p.dict("tax_id_collection") or Params({})).only(
            "enabled", "required").bool("enabled", False)), "required": "never"},
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        if mode != "setup" else None,
        "ui_mode": "hosted_page",
        "url": session_url(sb, session_id),
        "wallet_options": None,
    }
    sb.store.add(session)
    sb.store.add({
        "id": extras_id(session_id),
        "object": EXTRAS_TYPE,
        "line_items": items,
        "payment_intent_data": _payment_intent_data(p),
        "setup_intent_data": _setup_intent_data(p),
        "subscription_data": subscription_data,
        "payer": None,  # what the payer typed on the hosted page: email, name, customer made for them
        "subscription": None,  # subscription mode: the subscription made at the first attempt to pay
        "tax_location": None,  # automatic tax: the billing address and tax IDs typed on the page
        "customer_update_address": _customer_update(p) == "auto",
    })
    refresh_totals(sb, session)
    sb.scheduler.at(expires_at, EXPIRE_JOB, session_id)
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
