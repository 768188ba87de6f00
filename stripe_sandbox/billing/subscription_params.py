"""A subscription request's parameters, checked: what ``POST /v1/subscriptions`` and
``POST /v1/subscriptions/{id}`` (and a schedule that changes its subscription) read the same way. Nothing here
changes a subscription; each function returns a value or raises the API's error."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such, state_error
from ..params import Params
from ..store import Obj
from . import subscriptions as subs

PRORATION = ("create_prorations", "none", "always_invoice")


def refuse_unsupported(p: Params, names: tuple[str, ...]) -> None:
    for unsupported in names:
        if unsupported in p:
            raise invalid_request(f"The sandbox does not support `{unsupported}` yet.", param=unsupported)


def check_updatable(sub: Obj, p: Params) -> None:
    """What the subscription's state or its schedule forbids an update to change."""
    if sub["status"] in subs.TERMINAL and set(p.data) - {"metadata", "cancellation_details", "expand"}:
        raise state_error("A canceled subscription can only update its cancellation_details and metadata.")
    if sub["status"] == "incomplete" and set(p.data) - {"metadata", "default_payment_method", "expand",
                                                         "description"}:
        raise state_error("An incomplete subscription can only update its metadata and default_payment_method.")
    if sub.get("schedule") and ("cancel_at_period_end" in p or "cancel_at" in p):
        raise invalid_request(f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and "
                              "updating any cancelation behavior directly is not allowed. Please update the "
                              "schedule instead.", param="cancel_at_period_end" if "cancel_at_period_end" in p
                              else "cancel_at")


def payment_method(sb: Any, p: Params, customer: Obj) -> str | None:
    """``default_payment_method``: a PaymentMethod attached to the customer."""
    pm_id = p.optional_str("default_payment_method")
    if pm_id is None:
        return None
    pm = sb.store.get(pm_id, "payment_method")
    if pm is None:
        raise no_such("PaymentMethod", pm_id, "default_payment_method")
    if pm.get("customer") != customer["id"]:
        raise invalid_request("The customer does not have a payment method with the ID "
                              f"{pm_id}. The payment method must be attached to the customer.",
                              param="default_payment_method")
    return pm_id


def timestamp_or_now(p: Params, name: str, now: int) -> int | None:
    """A timestamp in the future, or ``now``; None when not given (or given empty)."""
    raw = p.raw(name)
    if raw is None or raw == "":
        return None
    if raw == "now":
        return now
    value = p.int(name)
    assert value is not None
    if value <= now:
        raise invalid_request("Invalid timestamp: must be an integer Unix timestamp in the future.", param=name)
    return value


def trial_settings(p: Params) -> Obj:
    settings = {"end_behavior": {"billing_cycle_anchor": None, "missing_payment_method": "create_invoice"}}
    given = p.dict("trial_settings")
    if given is not None:
        behavior = given.dict("end_behavior", required=True)
        assert behavior is not None
        settings["end_behavior"]["missing_payment_method"] = behavior.str(
            "missing_payment_method", required=True, choices=("cancel", "create_invoice", "pause")) or ""
    return settings


def pause_collection(p: Params) -> Obj | None:
    raw = p.raw("pause_collection")
    if raw is None or raw == "":
        return None
    given = p.dict("pause_collection")
    assert given is not None
    return {"behavior": given.str("behavior", required=True, choices=("keep_as_draft", "mark_uncollectible",
                                                                        "void")),
            "resumes_at": given.int("resumes_at")}


def cancellation_feedback(p: Params) -> tuple[str | None, str | None] | None:
    """``cancellation_details``' comment and feedback; None when not given."""
    details = p.dict("cancellation_details")
    if details is None:
        return None
    details.only("comment", "feedback")
    return details.optional_str("comment"), details.optional_str("feedback")
