"""A Checkout Session's create parameters, checked: each function reads a few parameters and returns their
values or raises the API's error. Nothing here stores anything; ``checkout_sessions`` builds the session from
what these return, calling them in the order the API has always checked the parameters (so that a request with
two mistakes is refused for the same one)."""

from __future__ import annotations

from typing import Any

from ..billing import subscriptions as subs
from ..errors import invalid_request
from ..params import Params, merge_metadata
from ..store import Obj
from .customer_records import get_customer
from .payment_methods import ONE_TIME_TYPES

MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60
# A client computes expires_at from its own clock; allow for the request's travel time.
LIFETIME_SLACK = 10
MAX_LINE_ITEMS = 100
MAX_AMOUNT = 99_999_999

LOCALES = ("auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
           "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
           "pt-BR", "ro", "ru",
           "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW")
PI_DATA_FIELDS = ("metadata", "description", "receipt_email", "capture_method", "setup_future_usage",
                  "statement_descriptor", "statement_descriptor_suffix", "shipping", "on_behalf_of",
                  "transfer_data", "transfer_group", "application_fee_amount")
SUBSCRIPTION_DATA_FIELDS = ("trial_period_days", "trial_end", "metadata", "description", "trial_settings")
# Stripe's minimum trial when ``subscription_data[trial_end]`` is given.
MIN_TRIAL_END = 48 * 3600


def mode(p: Params) -> str:
    """``mode``; the sandbox serves hosted Checkout only."""
    checked = p.str("mode", required=True, choices=("payment", "setup", "subscription"))
    assert checked is not None
    # the pinned API version's names (``hosted``, ``embedded`` and ``custom`` before it)
    ui_mode = p.str("ui_mode", "hosted_page", choices=("elements", "embedded_page", "form", "hosted_page"))
    if ui_mode != "hosted_page":
        raise invalid_request("The sandbox only serves hosted Checkout (`ui_mode=hosted_page`).", param="ui_mode")
    return checked


def success_url(p: Params) -> str:
    """``success_url`` (required), and ``cancel_url`` checked with it."""
    url = p.optional_str("success_url")
    if url is None:
        raise invalid_request("Missing required param: success_url.", param="success_url",
                              code="parameter_missing")
    for name, given in (("success_url", url), ("cancel_url", p.optional_str("cancel_url"))):
        if given is not None and not given.startswith(("http://", "https://")):
            raise invalid_request(f"Not a valid URL: {name} must start with http:// or https://.", param=name)
    return url


def currency(sb: Any, p: Params, mode: str, items: list[Obj]) -> str | None:
    """The session's one currency: ``currency`` and the line items' agree. Payment and subscription mode need
    line items (at most ``MAX_LINE_ITEMS``, subscription mode on one interval); setup mode takes none."""
    given = (p.optional_str("currency") or "").lower() or None
    if mode not in ("payment", "subscription"):
        if items:
            raise invalid_request("You cannot pass `line_items` in `setup` mode.", param="line_items")
        return given
    if not items:
        raise invalid_request(f"line_items is required in `{mode}` mode.", param="line_items",
                              code="parameter_missing")
    if len(items) > MAX_LINE_ITEMS:
        raise invalid_request(f"You may pass at most {MAX_LINE_ITEMS} line items.", param="line_items")
    currencies = {item["currency"] for item in items}
    if given is not None:
        currencies.add(given)
    if len(currencies) > 1:
        raise invalid_request(
            "All line items must use the same currency: a Checkout Session has one currency "
            f"(got {', '.join(sorted(currencies))}).", param="line_items")
    if mode == "subscription":
        subs.check_intervals([sb.store.objects[item["price"]] for item in items], "line_items")
    return currencies.pop()


def customer(sb: Any, p: Params) -> tuple[str | None, str | None, str | None]:
    """``customer`` (which must exist), ``customer_email`` and ``customer_creation``, of which one at most."""
    customer_id = p.optional_str("customer")
    customer_email = p.optional_str("customer_email")
    if customer_id is not None:
        get_customer(sb, customer_id, "customer")
        if customer_email is not None:
            raise invalid_request("You may only specify one of these parameters: customer, customer_email.",
                                  param="customer_email")
    creation = p.str("customer_creation", choices=("always", "if_required"))
    if creation is not None and customer_id is not None:
        raise invalid_request("You may only specify one of these parameters: customer, customer_creation.",
                              param="customer_creation")
    return customer_id, customer_email, creation


def subtotal(items: list[Obj], mode: str) -> int | None:
    """What the line items add up to (None in setup mode)."""
    total = sum(item["amount_subtotal"] for item in items) if mode != "setup" else None
    if total is not None and total > MAX_AMOUNT:
        raise invalid_request("The total amount of the line items is too large.", param="line_items")
    return total


def discounts(p: Params, mode: str) -> list[Params]:
    """``discounts``: one at most, not beside ``allow_promotion_codes``, not in setup mode."""
    given = p.dict_list("discounts")
    if given and p.bool("allow_promotion_codes"):
        raise invalid_request("You may only specify one of these parameters: allow_promotion_codes, discounts.",
                              param="discounts")
    if given and mode == "setup":
        raise invalid_request("`discounts` cannot be used in `setup` mode.", param="discounts")
    if len(given) > 1:
        raise invalid_request("Checkout Sessions accept one discount only.", param="discounts")
    return given


def expires_at(p: Params, now: int) -> int:
    when = p.int("expires_at")
    if when is None:
        return now + MAX_LIFETIME
    if when > now + MAX_LIFETIME + LIFETIME_SLACK:
        raise invalid_request(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at")
    if when < now + MIN_LIFETIME - LIFETIME_SLACK:
        raise invalid_request(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            param="expires_at")
    return when


def payment_intent_data(p: Params) -> Obj:
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


def setup_intent_data(p: Params) -> Obj:
    data = p.dict("setup_intent_data")
    if data is None:
        return {}
    data.only("metadata", "description", "on_behalf_of")
    return {"metadata": merge_metadata({}, data.raw("metadata"), "setup_intent_data[metadata]"),
            "description": data.optional_str("description")}


def subscription_data(p: Params, mode: str, now: int) -> Obj:
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


def payment_method_types(p: Params, mode: str) -> list[str]:
    types = p.str_list("payment_method_types") or ["card"]
    if mode == "subscription":
        for i, type_ in enumerate(types):
            if type_ in ONE_TIME_TYPES:
                # Recurring payments need a reusable method; these can pay once only.
                raise invalid_request(
                    f"The payment method type `{type_}` cannot be used in `subscription` mode: it does not "
                    "support recurring payments.", param=f"payment_method_types[{i}]")
    return types


def refuse_unsimulated(p: Params) -> None:
    """Options that would change the amount due are refused rather than silently ignored."""
    if p.list("shipping_options"):
        raise invalid_request("The sandbox's Checkout does not charge shipping yet.",
                              param="shipping_options")


def customer_update(p: Params) -> str | None:
    update = p.dict("customer_update")
    return update.only("address", "name", "shipping").str("address", choices=("auto", "never")) if update else None
