"""Subscription schedules: create (``from_subscription``, or ``customer`` + ``phases``), retrieve, update
phases, release, cancel, list. The phases' rules live in ``billing.schedules`` (and ``schedule_phases`` for the
requests); a schedule with its own phases starts its subscription through ``billing.schedule_start``.

Phases given to an update: the first is the current phase (its ``start_date`` is kept, and may be omitted),
unless the schedule has not started yet, when it may move. A schedule created with ``phases`` starts at its
``start_date`` (``now`` when omitted, or a future timestamp): the sandbox does not backdate, so a past
``start_date`` is refused, save for up to a minute of clock skew, which counts as now.
"""

from __future__ import annotations

from typing import Any

from ..billing import schedule_start as starting, schedules as sched, subscriptions as subs
from ..billing.time import now_for
from ..errors import invalid_request, missing_param, no_such, state_error
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from . import schedule_phases as phases_of
from .customer_records import get_customer
from .events import created_filter
from .subscriptions import cancel as cancel_subscription, get_subscription

END_BEHAVIORS = ("release", "cancel")
# A start this far in the past is a client's clock running behind, not a request to backdate.
CLOCK_SKEW = 60
DEFAULT_SETTINGS = ("application_fee_percent", "automatic_tax", "billing_cycle_anchor", "billing_thresholds",
                    "collection_method", "default_payment_method", "description", "invoice_settings",
                    "on_behalf_of", "transfer_data")


def get_schedule(sb: Any, schedule_id: str, param: str = "schedule") -> Obj:
    schedule = sched.get(sb, schedule_id)
    if schedule is None:
        raise no_such("subscription_schedule", schedule_id, param)
    return schedule


def _end_behavior(p: Params, current: str) -> str:
    value = p.str("end_behavior", current, choices=("release", "cancel", "none", "renew")) or current
    if value not in END_BEHAVIORS:
        raise invalid_request(f"The sandbox supports end_behavior `release` and `cancel` only, not `{value}`.",
                              param="end_behavior")
    return value


def _start_date(p: Params, name: str, now: int) -> int | None:
    """A start given as ``now`` or a timestamp (None when not given)."""
    raw = p.raw(name)
    if raw is None or raw == "":
        return None
    if raw == "now":
        return now
    start = p.int(name)
    assert start is not None
    if start < now - CLOCK_SKEW:
        raise invalid_request("The sandbox does not backdate subscription schedules: use `now` or a future "
                              f"{p._name(name)}.", param=p._name(name))
    return max(start, now)


def _current_phases(sb: Any, p: Params, schedule: Obj, sub: Obj) -> list[Obj]:
    entries = p.dict_list("phases", required=True)
    start = schedule["current_phase"]["start_date"] if schedule["current_phase"] else now_for(sb, sub)
    if entries and entries[0].raw("start_date") not in (None, "", "now") and entries[0].int("start_date") != start:
        raise invalid_request("You can not modify the start date of the current phase.",
                              param=entries[0]._name("start_date"))
    return phases_of.parse(sb, entries, start=start, now=now_for(sb, sub), currency=sub["currency"])


def _waiting_phases(sb: Any, p: Params, schedule: Obj) -> list[Obj]:
    """Phases of a schedule that has not started: the first may move, to ``now`` too."""
    entries = p.dict_list("phases", required=True)
    now = now_for(sb, schedule)
    start = _start_date(entries[0], "start_date", now) if entries else None
    return phases_of.parse(sb, entries, start=start or schedule["phases"][0]["start_date"], now=now, currency=None)


def _live(schedule: Obj, action: str) -> None:
    if schedule["status"] not in sched.LIVE:
        raise state_error(f"You cannot {action} a subscription schedule that is currently in the "
                          f"`{schedule['status']}` status. It must be in one of the following statuses: "
                          "`not_started`, `active`.")


CREATE_PARAMS = ("from_subscription", "customer", "phases", "start_date", "end_behavior", "metadata",
                 "default_settings", "billing_mode", "customer_account", "pause_schedules")


@route("POST", "/v1/subscription_schedules", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    if p.optional_str("from_subscription") is not None:
        return _from_subscription(sb, p)
    return _with_phases(sb, p)


def _from_subscription(sb: Any, p: Params) -> Obj:
    sub_id = p.optional_str("from_subscription")
    assert sub_id is not None
    others = set(p.data) - {"from_subscription", "metadata", "expand"}
    if others:
        raise invalid_request("When `from_subscription` is set, other parameters (such as phases) cannot be set; "
                              "update the schedule afterwards.", param=min(others))
    sub = get_subscription(sb, sub_id, "from_subscription")
    if sub["status"] in subs.TERMINAL:
        raise invalid_request(f"The subscription {sub_id} has ended.", param="from_subscription")
    if sched.of_subscription(sb, sub) is not None:
        raise invalid_request("You cannot migrate a subscription that is already attached to a schedule: "
                              f"`{sub['schedule']}`.", param="from_subscription")
    schedule = sched.create_from_subscription(sb, sub)
    if "metadata" in p:
        schedule["metadata"] = merge_metadata({}, p.raw("metadata"))
        sb.store.save(schedule)
    sched.sync_cancel_at(sb, schedule, sub)
    return schedule


def _with_phases(sb: Any, p: Params) -> Obj:
    """Everything is checked before anything is made, so a refused request leaves no trace."""
    phases_of.refuse_unsupported(p, ("billing_mode", "customer_account", "pause_schedules"))
    customer_id = p.str("customer", required=True)
    assert customer_id is not None
    customer = get_customer(sb, customer_id)
    entries = p.dict_list("phases")
    if not entries:
        raise missing_param("phases")
    now = now_for(sb, customer)
    start = _start_date(p, "start_date", now)
    payment_method = _default_payment_method(sb, p, customer)
    end_behavior = _end_behavior(p, "release")
    metadata = merge_metadata({}, p.raw("metadata"))
    phases = phases_of.parse(sb, entries, start=now if start is None else start, now=now, currency=None,
                             accepted=phases_of.CREATE_PHASE_PARAMS)
    return starting.create(sb, customer=customer, phases=phases, end_behavior=end_behavior, metadata=metadata,
                           default_payment_method=payment_method)


def _default_payment_method(sb: Any, p: Params, customer: Obj) -> str | None:
    settings = p.dict("default_settings")
    if settings is None:
        return None
    settings.only(*DEFAULT_SETTINGS)
    phases_of.refuse_unsupported(settings, tuple(n for n in DEFAULT_SETTINGS if n != "default_payment_method"))
    pm_id = settings.optional_str("default_payment_method")
    if pm_id is None:
        return None
    param = settings._name("default_payment_method")
    pm = sb.store.get(pm_id, "payment_method")
    if pm is None:
        raise no_such("PaymentMethod", pm_id, param)
    if pm.get("customer") != customer["id"]:
        raise invalid_request(f"The customer does not have a payment method with the ID {pm_id}. The payment "
                              "method must be attached to the customer.", param=param)
    return pm_id


@route("GET", "/v1/subscription_schedules/{schedule_id}")
def retrieve(sb: Any, p: Params, schedule_id: str) -> Obj:
    return get_schedule(sb, schedule_id)


@route("POST", "/v1/subscription_schedules/{schedule_id}", params=(
    "phases", "end_behavior", "metadata", "proration_behavior", "default_settings", "pause_schedules"))
def update(sb: Any, p: Params, schedule_id: str) -> Obj:
    schedule = get_schedule(sb, schedule_id)
    phases_of.refuse_unsupported(p, ("default_settings", "pause_schedules"))
    _live(schedule, "update")
    behavior = p.str("proration_behavior", "create_prorations", choices=sched.PRORATION) or "create_prorations"
    end_behavior = _end_behavior(p, schedule["end_behavior"])
    metadata = merge_metadata(schedule["metadata"], p.raw("metadata"))
    if schedule["status"] == starting.NOT_STARTED:
        phases = _waiting_phases(sb, p, schedule) if "phases" in p else schedule["phases"]
        return starting.replace_phases(sb, schedule, phases, end_behavior=end_behavior, metadata=metadata)
    sub = get_subscription(sb, schedule["subscription"], "subscription")
    phases = _current_phases(sb, p, schedule, sub) if "phases" in p else schedule["phases"]
    return sched.replace_phases(sb, schedule, sub, phases, end_behavior=end_behavior, metadata=metadata,
                                proration_behavior=behavior)


@route("POST", "/v1/subscription_schedules/{schedule_id}/release", params=("preserve_cancel_date",))
def release(sb: Any, p: Params, schedule_id: str) -> Obj:
    schedule = get_schedule(sb, schedule_id)
    _live(schedule, "release")
    return sched.release(sb, schedule, now_for(sb, schedule),
                         preserve_cancel_date=bool(p.bool("preserve_cancel_date", False)))


@route("POST", "/v1/subscription_schedules/{schedule_id}/cancel", params=("invoice_now", "prorate"))
def cancel(sb: Any, p: Params, schedule_id: str) -> Obj:
    """Cancels the subscription now as well (``invoice_now`` and ``prorate`` default to true, as Stripe's)."""
    schedule = get_schedule(sb, schedule_id)
    _live(schedule, "cancel")
    if schedule["subscription"] is None:
        return starting.cancel(sb, schedule)
    params = {"invoice_now": "true" if p.bool("invoice_now", True) else "false",
              "prorate": "true" if p.bool("prorate", True) else "false"}
    cancel_subscription(sb, Params(params), schedule["subscription"])  # its end cancels the schedule
    return schedule


def _range(p: Params, name: str) -> tuple[int | None, int | None]:
    """``canceled_at`` and the like, as exact integers or ``[gt|gte|lt|lte]`` bounds (as ``created``)."""
    return created_filter(Params({"created": p.raw(name)})) if name in p else (None, None)


@route("GET", "/v1/subscription_schedules", params=(
    *LIST_PARAMS, "customer", "scheduled", "created", "canceled_at", "completed_at", "released_at",
    "customer_account"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    scheduled = p.bool("scheduled")
    ranges = {name: _range(p, name) for name in ("created", "canceled_at", "completed_at", "released_at")}

    def where(schedule: Obj) -> bool:
        if scheduled is not None and (schedule["status"] == "not_started") != scheduled:
            return False
        for name, (low, high) in ranges.items():
            if low is None and high is None:
                continue
            value = schedule[name]
            if value is None or (low is not None and value < low) or (high is not None and value > high):
                return False
        return True

    if customer:
        collection = sb.store.collection(sched.SCHEDULE, "customer", customer)
    else:
        collection = sb.store.collection(sched.SCHEDULE)
    return paginate(sb.store, collection, p, "/v1/subscription_schedules", where)
