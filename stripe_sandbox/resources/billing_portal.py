"""The customer portal's API: configurations (create, retrieve, update, list) and sessions (create).

A session's ``url`` is the hosted portal page (``portal_page``). Like Stripe's, a session is short-lived: its
URL must be opened within ``VISIT_WITHIN`` (5 minutes) of its creation, and once opened it keeps working for
``LIFETIME_AFTER_VISIT`` (1 hour, the sandbox's stand-in for "the customer's browser session"). Both run on
the sandbox clock, so tests can advance past them.

The default configuration (``is_default``) is created on first use, as a Stripe account has one from the
start: invoice history, payment method update, customer update (email, name, address, phone) and cancellation
at period end with a reason are on; plan switching is off, because it needs the products and prices to offer
(create a configuration with ``features[subscription_update][products]``, or update the default one).
``features[subscription_update][schedule_at_period_end][conditions]`` (``decreasing_item_amount``,
``shortening_interval``) makes the hosted page schedule such changes for the period end with a subscription
schedule, as Stripe's portal does (see ``portal_page``).
"""

from __future__ import annotations

import copy
from typing import Any

from ..billing import subscriptions as subs
from ..errors import invalid_request, no_such
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer
from .prices import get_price

VISIT_WITHIN = 5 * 60
LIFETIME_AFTER_VISIT = 60 * 60
DEFAULT_KEY = "billing_portal:default_configuration"
CANCELLATION_REASONS = ("too_expensive", "missing_features", "switched_service", "unused", "customer_service",
                        "too_complex", "low_quality", "other")
CUSTOMER_UPDATES = ("address", "email", "name", "phone", "shipping", "tax_id")
ALLOWED_UPDATES = ("price", "promotion_code", "quantity")
PRORATION = ("always_invoice", "create_prorations", "none")
# A plan change meeting one of these waits for the period end (a subscription schedule) instead of applying now.
SCHEDULE_CONDITIONS = ("decreasing_item_amount", "shortening_interval")
FLOW_TYPES = ("payment_method_update", "subscription_cancel", "subscription_update", "subscription_update_confirm",
              "subscription_pause", "customer_update")
LOCALES = ("auto", "bg", "cs", "da", "de", "el", "en", "en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-NZ",
           "en-SG", "es", "es-419", "et", "fi", "fil", "fr", "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt",
           "lv", "ms", "mt", "nb", "nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi",
           "zh", "zh-HK", "zh-TW")


# -- configurations ------------------------------------------------------------------------------------

def _disabled_features() -> Obj:
    return {
        "customer_update": {"allowed_updates": [], "enabled": False},
        "invoice_history": {"enabled": False},
        "payment_method_update": {"enabled": False, "payment_method_configuration": None},
        "subscription_cancel": {
            "cancellation_reason": {"enabled": False, "feedback_options": None, "options": []},
            "enabled": False, "mode": "at_period_end", "proration_behavior": "none"},
        "subscription_pause": {"duration": {"interval_options": [], "type": "indefinite"}, "enabled": False},
        "subscription_update": {
            "billing_cycle_anchor": None, "default_allowed_updates": [], "enabled": False, "products": None,
            "proration_behavior": "create_prorations", "schedule_at_period_end": {"conditions": []},
            "trial_update_behavior": "end_trial"},
    }


def _products(sb: Any, entries: list[Params]) -> list[Obj]:
    out = []
    for entry in entries:
        entry.only("product", "prices", "adjustable_quantity")
        product_id = entry.str("product", required=True)
        assert product_id is not None
        if sb.store.get(product_id, "product") is None:
            raise no_such("product", product_id, entry._name("product"))
        prices = entry.str_list("prices", required=True)
        if not prices:
            raise invalid_request("Missing required param: prices.", param=entry._name("prices"),
                                  code="parameter_missing")
        for i, price_id in enumerate(prices):
            price = get_price(sb, price_id, f"{entry._name('prices')}[{i}]")
            if price["product"] != product_id or price["type"] != "recurring":
                raise invalid_request(f"The price {price_id} must be a recurring price of product {product_id}.",
                                      param=f"{entry._name('prices')}[{i}]")
        if entry.dict("adjustable_quantity") is not None:
            raise invalid_request("The sandbox's portal does not change quantities yet.",
                                  param=entry._name("adjustable_quantity"))
        out.append({"adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1},
                    "prices": prices, "product": product_id})
    return out


def _apply_features(sb: Any, features: Obj, p: Params | None) -> None:
    """Overlay the ``features`` parameter on ``features`` (create starts from all disabled)."""
    if p is None:
        return
    p.only(*features)
    _customer_update_feature(features["customer_update"], p.dict("customer_update"))
    for name in ("invoice_history", "payment_method_update"):
        given = p.dict(name)
        if given is not None:
            given.only("enabled", "payment_method_configuration")
            _set_enabled(features[name], given)
    _cancel_feature(features["subscription_cancel"], p.dict("subscription_cancel"))
    given = p.dict("subscription_pause")
    if given is not None and given.bool("enabled"):
        raise invalid_request("The sandbox's portal does not pause subscriptions yet.",
                              param="features[subscription_pause][enabled]")
    _update_feature(sb, features["subscription_update"], p.dict("subscription_update"))


def _set_enabled(section: Obj, given: Params) -> None:
    if "enabled" in given:
        section["enabled"] = bool(given.bool("enabled"))


def _names_among(given: Params, name: str, known: tuple[str, ...] | frozenset[str], refusal: str) -> list[str]:
    """The list parameter ``name``, each entry one of ``known`` (else ``refusal``, naming the entry)."""
    names = given.str_list(name)
    for i, entry in enumerate(names):
        if entry not in known:
            raise invalid_request(f"{refusal}: {entry}", param=f"{given._name(name)}[{i}]")
    return names


def _customer_update_feature(section: Obj, given: Params | None) -> None:
    if given is None:
        return
    given.only("allowed_updates", "enabled")
    _set_enabled(section, given)
    if "allowed_updates" in given:
        section["allowed_updates"] = _names_among(given, "allowed_updates", CUSTOMER_UPDATES,
                                                  "Invalid allowed_updates")


def _cancel_feature(section: Obj, given: Params | None) -> None:
    if given is None:
        return
    given.only("enabled", "mode", "proration_behavior", "cancellation_reason")
    _set_enabled(section, given)
    section["mode"] = given.str("mode", section["mode"], choices=("at_period_end", "immediately"))
    section["proration_behavior"] = given.str("proration_behavior", section["proration_behavior"],
                                              choices=PRORATION)
    reason = given.dict("cancellation_reason")
    if reason is not None:
        reason.only("enabled", "options", "feedback_options")
        _set_enabled(section["cancellation_reason"], reason)
        if "options" in reason:
            section["cancellation_reason"]["options"] = _names_among(reason, "options", CANCELLATION_REASONS,
                                                                     "Invalid cancellation reason")


def _update_feature(sb: Any, section: Obj, given: Params | None) -> None:
    if given is None:
        return
    given.only("enabled", "default_allowed_updates", "products", "proration_behavior",
               "schedule_at_period_end", "billing_cycle_anchor", "trial_update_behavior")
    _set_enabled(section, given)
    if "default_allowed_updates" in given:
        section["default_allowed_updates"] = _names_among(given, "default_allowed_updates", ALLOWED_UPDATES,
                                                          "Invalid default_allowed_updates")
    elif section["enabled"] and not section["default_allowed_updates"]:
        section["default_allowed_updates"] = ["price"]  # what "switch plan" needs
    if "products" in given:
        section["products"] = _products(sb, given.dict_list("products")) or None
    section["proration_behavior"] = given.str("proration_behavior", section["proration_behavior"],
                                              choices=PRORATION)
    section["trial_update_behavior"] = given.str("trial_update_behavior", section["trial_update_behavior"],
                                                 choices=("continue_trial", "end_trial"))
    section["billing_cycle_anchor"] = given.str("billing_cycle_anchor", section["billing_cycle_anchor"],
                                                choices=("now", "unchanged"))
    schedule = given.dict("schedule_at_period_end")
    if schedule is not None:
        schedule.only("conditions")
        conditions = []
        for condition in schedule.dict_list("conditions"):
            condition.only("type")
            conditions.append({"type": condition.str("type", required=True, choices=SCHEDULE_CONDITIONS)})
        section["schedule_at_period_end"] = {"conditions": conditions}
    if section["enabled"] and "price" in section["default_allowed_updates"] and not section["products"]:
        raise invalid_request("Missing required param: features[subscription_update][products].",
                              param="features[subscription_update][products]", code="parameter_missing")


def _business_profile(profile: Obj, p: Params | None) -> None:
    if p is None:
        return
    p.only("headline", "privacy_policy_url", "terms_of_service_url")
    for name in ("headline", "privacy_policy_url", "terms_of_service_url"):
        if name in p:
            profile[name] = p.optional_str(name)


def _new_configuration(sb: Any, features: Obj, *, is_default: bool) -> Obj:
    now = sb.clock.now_int()
    return {
        "id": new_id("bpc", 24),
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
        "created": now,
        "default_return_url": None,
        "features": features,
        "is_default": is_default,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": {},
        "name": None,
        "updated": now,
    }


def default_configuration(sb: Any) -> Obj:
    found = sb.store.get(sb.store.kv.get(DEFAULT_KEY) or "", "billing_portal.configuration")
    if found is not None:
        return found
    features = _disabled_features()
    features["customer_update"] = {"allowed_updates": ["email", "name", "address", "phone"], "enabled": True}
    features["invoice_history"]["enabled"] = True
    features["payment_method_update"]["enabled"] = True
    features["subscription_cancel"].update(enabled=True, cancellation_reason={
        "enabled": True, "feedback_options": None, "options": list(CANCELLATION_REASONS)})
    config = _new_configuration(sb, features, is_default=True)
    sb.store.add(config)
    sb.store.set_kv(DEFAULT_KEY, config["id"])
    return config


def get_configuration(sb: Any, config_id: str, param: str = "configuration") -> Obj:
    config = sb.store.get(config_id, "billing_portal.configuration")
    if config is None:
        raise no_such("configuration", config_id, param)
    return config


def _login_page(config: Obj, p: Params) -> None:
    given = p.dict("login_page")
    if given is not None:
        given.only("enabled")
        if given.bool("enabled"):
            raise invalid_request("The sandbox has no portal login page.", param="login_page[enabled]")


CONFIG_PARAMS = ("business_profile", "default_return_url", "features", "login_page", "metadata", "name")


@route("POST", "/v1/billing_portal/configurations", params=CONFIG_PARAMS)
def create_configuration(sb: Any, p: Params) -> Obj:
    features = _disabled_features()
    _apply_features(sb, features, p.dict("features", required=True))
    config = _new_configuration(sb, features, is_default=False)
    _business_profile(config["business_profile"], p.dict("business_profile"))
    config["default_return_url"] = p.optional_str("default_return_url")
    config["metadata"] = merge_metadata({}, p.raw("metadata"))
    config["name"] = p.optional_str("name")
    _login_page(config, p)
    sb.store.add(config)
    return config


@route("GET", "/v1/billing_portal/configurations/{config_id}")
def retrieve_configuration(sb: Any, p: Params, config_id: str) -> Obj:
    if sb.store.kv.get(DEFAULT_KEY) is None:
        default_configuration(sb)
    return get_configuration(sb, config_id, "configuration")


@route("POST", "/v1/billing_portal/configurations/{config_id}", params=(*CONFIG_PARAMS, "active"))
def update_configuration(sb: Any, p: Params, config_id: str) -> Obj:
    config = get_configuration(sb, config_id, "configuration")
    features = copy.deepcopy(config["features"])  # a refused update changes nothing
    _apply_features(sb, features, p.dict("features"))
    active = p.bool("active", config["active"])
    if config["is_default"] and active is False:
        raise invalid_request("The default configuration cannot be deactivated.", param="active")
    _login_page(config, p)
    profile = copy.deepcopy(config["business_profile"])
    _business_profile(profile, p.dict("business_profile"))
    config["features"], config["business_profile"], config["active"] = features, profile, active
    if "default_return_url" in p:
        config["default_return_url"] = p.optional_str("default_return_url")
    if "name" in p:
        config["name"] = p.optional_str("name")
    config["metadata"] = merge_metadata(config["metadata"], p.raw("metadata"))
    config["updated"] = sb.clock.now_int()
    sb.store.save(config)
    return config


@route("GET", "/v1/billing_portal/configurations", params=(*LIST_PARAMS, "active", "is_default"))
def list_configurations(sb: Any, p: Params) -> Obj:
    default_configuration(sb)
    active, is_default = p.bool("active"), p.bool("is_default")

    def where(config: Obj) -> bool:
        return (active is None or config["active"] == active) and (is_default is None
                                                                   or config["is_default"] == is_default)

    return paginate(sb.store, sb.store.collection("billing_portal.configuration"), p,
                    "/v1/billing_portal/configurations", where)


# -- sessions ------------------------------------------------------------------------------------------

def session_url(sb: Any, session_id: str) -> str:
    return f"{sb.base_url}/p/session/{session_id}"


def _customer_subscription(sb: Any, customer: Obj, given: Params) -> Obj:
    sub_id = given.str("subscription", required=True)
    assert sub_id is not None
    sub = sb.store.get(sub_id, "subscription")
    if sub is None:
        raise no_such("subscription", sub_id, given._name("subscription"))
    if sub["customer"] != customer["id"]:
        raise invalid_request(f"The subscription {sub_id} does not belong to customer {customer['id']}.",
                              param=given._name("subscription"))
    if sub["status"] in subs.TERMINAL:
        raise invalid_request(f"The subscription {sub_id} has ended.", param=given._name("subscription"))
    return sub


def _after_completion(p: Params | None) -> Obj:
    out: Obj = {"hosted_confirmation": None, "redirect": None, "type": "portal_homepage"}
    if p is None:
        return out
    p.only("type", "redirect", "hosted_confirmation")
    out["type"] = p.str("type", required=True, choices=("hosted_confirmation", "portal_homepage", "redirect"))
    if out["type"] == "redirect":
        redirect = p.dict("redirect", required=True)
        assert redirect is not None
        out["redirect"] = {"return_url": redirect.only("return_url").str("return_url", required=True)}
    elif out["type"] == "hosted_confirmation":
        confirmation = p.dict("hosted_confirmation")
        message = confirmation.only("custom_message").optional_str("custom_message") if confirmation else None
        out["hosted_confirmation"] = {"custom_message": message}
    return out


def _flow(sb: Any, customer: Obj, config: Obj, p: Params | None) -> Obj | None:
    if p is None:
        return None
    p.only("type", "after_completion", "subscription_cancel", "subscription_update", "subscription_update_confirm",
           "subscription_pause")
    type_ = p.str("type", required=True, choices=FLOW_TYPES)
    features = config["features"]
    flow: Obj = {"after_completion": _after_completion(p.dict("after_completion")), "customer_update": None,
                 "subscription_cancel": None, "subscription_pause": None, "subscription_update": None,
                 "subscription_update_confirm": None, "type": type_}
    feature = {"payment_method_update": "payment_method_update", "subscription_cancel": "subscription_cancel",
               "subscription_update": "subscription_update"}.get(type_ or "")
    if feature is None:
        raise invalid_request(f"The sandbox's portal does not offer the `{type_}` flow yet.",
                              param="flow_data[type]")
    if not features[feature]["enabled"]:
        raise invalid_request(f"The `{feature}` feature is disabled in configuration {config['id']}: enable it "
                              f"to use the `{type_}` flow.", param="flow_data[type]")
    if type_ == "subscription_cancel":
        given = p.dict("subscription_cancel", required=True)
        assert given is not None
        given.only("subscription", "retention")
        if given.dict("retention") is not None:
            raise invalid_request("The sandbox's portal does not offer retention coupons yet.",
                                  param="flow_data[subscription_cancel][retention]")
        sub = _customer_subscription(sb, customer, given)
        if sub["cancel_at_period_end"]:
            raise invalid_request(f"The subscription {sub['id']} is already set to cancel at period end.",
                                  param="flow_data[subscription_cancel][subscription]")
        flow["subscription_cancel"] = {"retention": None, "subscription": sub["id"]}
    elif type_ == "subscription_update":
        given = p.dict("subscription_update", required=True)
        assert given is not None
        sub = _customer_subscription(sb, customer, given.only("subscription"))
        flow["subscription_update"] = {"subscription": sub["id"]}
    return flow


SESSION_PARAMS = ("customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of",
                  "customer_account", "after_expiration")


@route("POST", "/v1/billing_portal/sessions", params=SESSION_PARAMS)
def create_session(sb: Any, p: Params) -> Obj:
    customer_id = p.str("customer", required=True)
    assert customer_id is not None
    customer = get_customer(sb, customer_id, "customer")
    config_id = p.optional_str("configuration")
    config = get_configuration(sb, config_id) if config_id else default_configuration(sb)
    if not config["active"]:
        raise invalid_request(f"The configuration {config['id']} is not active.", param="configuration")
    return_url = p.optional_str("return_url") or config["default_return_url"]
    if return_url is None:
        raise invalid_request("Missing required param: return_url (the configuration has no default_return_url).",
                              param="return_url", code="parameter_missing")
    if not return_url.startswith(("http://", "https://")):
        raise invalid_request("Not a valid URL: return_url must start with http:// or https://.", param="return_url")
    session_id = new_id("bps", 24)
    session: Obj = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": config["id"],
        "created": sb.clock.now_int(),
        "customer": customer["id"],
        "customer_account": None,
        "flow": _flow(sb, customer, config, p.dict("flow_data")),
        "livemode": False,
        "locale": p.str("locale", choices=LOCALES),
        "on_behalf_of": p.optional_str("on_behalf_of"),
        "return_url": return_url,
        "url": session_url(sb, session_id),
    }
    sb.store.add(session)
    return session
