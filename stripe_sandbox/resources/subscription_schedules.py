"""Subscription schedules: create (``from_subscription``), retrieve, update phases, release, cancel, list.
The phases' rules live in ``billing.schedules``.

Phases given to an update: the first is the current phase (its ``start_date`` is kept, and may be omitted);
each later phase starts where the previous one ends; a phase ends at ``end_date``, after ``duration``
(``{interval, interval_count}``) or ``iterations`` billing intervals of its prices, and the last phase, given
none of these, after one interval. Creating a schedule with its own phases (a subscription that starts
later) is not supported yet: create the subscription, then a schedule ``from_subscription``.
"""

from __future__ import annotations

from typing import Any

from ..billing import schedules as sched, subscriptions as subs
from ..billing.time import add_interval, now_for
from ..errors import invalid_request, no_such, state_error
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .events import created_filter
from .prices import get_price
from .subscriptions import cancel as cancel_subscription, get_subscription

PHASE_PARAMS = ("items", "start_date", "end_date", "duration", "iterations", "proration_behavior", "metadata",
                "description", "currency")
UNSUPPORTED_PHASE_PARAMS = ("add_invoice_items", "application_fee_percent", "automatic_tax", "billing_cycle_anchor",
                            "billing_thresholds", "collection_method", "default_payment_method", "default_tax_rates",
                            "discounts", "invoice_settings", "on_behalf_of", "transfer_data", "trial", "trial_end")
ITEM_PARAMS = ("price", "plan", "quantity", "metadata")
UNSUPPORTED_ITEM_PARAMS = ("price_data", "discounts", "tax_rates", "billing_thresholds")
END_BEHAVIORS = ("release", "cancel")


def get_schedule(sb: Any, schedule_id: str, param: str = "schedule") -> Obj:
    schedule = sched.get(sb, schedule_id)
    if schedule is None:
        raise no_such("subscription_schedule", schedule_id, param)
    return schedule


def _refuse_unsupported(p: Params, names: tuple[str, ...]) -> None:
    for name in names:
        if name in p:
            raise invalid_request(f"The sandbox does not support `{p._name(name)}` on subscription schedules yet.",
                                  param=p._name(name))


def _end_behavior(p: Params, current: str) -> str:
    value = p.str("end_behavior", current, choices=("release", "cancel", "none", "renew")) or current
    if value not in END_BEHAVIORS:
        raise invalid_request(f"The sandbox supports end_behavior `release` and `cancel` only, not `{value}`.",
                              param="end_behavior")
    return value


def _phase_items(sb: Any, entry: Params, currency: str) -> list[Obj]:
    items = entry.dict_list("items", required=True)
    if not items:
        raise invalid_request(f"Missing required param: {entry._name('items')}.", param=entry._name("items"),
                              code="parameter_missing")
    out, prices = [], []
    for item in items:
        item.only(*ITEM_PARAMS, *UNSUPPORTED_ITEM_PARAMS)
        _refuse_unsupported(item, UNSUPPORTED_ITEM_PARAMS)
        price_id = item.optional_str("price") or item.optional_str("plan")
        if price_id is None:
            raise invalid_request(f"Missing required param: {item._name('price')}.", param=item._name("price"),
                                  code="parameter_missing")
        price = get_price(sb, price_id, item._name("price"))
        subs.check_price(price, item._name("price"))
        if price["currency"] != currency:
            raise invalid_request(f"The price {price_id} is in {price['currency']}, but this schedule bills in "
                                  f"{currency}.", param=item._name("price"))
        prices.append(price)
        quantity = item.int("quantity", 1, minimum=0)
        assert quantity is not None
        out.append(sched.phase_item(price_id, quantity, merge_metadata({}, item.raw("metadata"))))
    subs.check_intervals(prices, entry._name("items"))
    return out


def _phase_end(sb: Any, entry: Params, start: int, items: list[Obj], last: bool) -> int:
    rec = sb.store.objects[items[0]["price"]]["recurring"]
    given = [name for name in ("end_date", "duration", "iterations") if name in entry]
    if len(given) > 1:
        raise invalid_request(f"You may only specify one of these parameters: {', '.join(given)}.",
                              param=entry._name(given[1]))
    if "end_date" in entry:
        end = entry.int("end_date")
        assert end is not None
    elif "duration" in entry:
        duration = entry.dict("duration", required=True)
        assert duration is not None
        duration.only("interval", "interval_count")
        interval = duration.str("interval", required=True, choices=("day", "week", "month", "year"))
        count = duration.int("interval_count", 1, minimum=1)
        assert interval is not None and count is not None
        end = add_interval(start, interval, count)
    elif "iterations" in entry or last:
        iterations = entry.int("iterations", 1, minimum=1)
        assert iterations is not None
        end = add_interval(start, rec["interval"], rec["interval_count"], iterations)
    else:
        raise invalid_request(f"Missing required param: {entry._name('end_date')} (every phase but the last "
                              "needs an end_date, a duration or iterations).", param=entry._name("end_date"),
                              code="parameter_missing")
    if end <= start:
        raise invalid_request("A phase must end after it starts.", param=entry._name("end_date"))
    return end


def _phases(sb: Any, p: Params, schedule: Obj, sub: Obj) -> list[Obj]:
    entries = p.dict_list("phases", required=True)
    if not entries:
        raise invalid_request("Missing required param: phases.", param="phases", code="parameter_missing")
    now = now_for(sb, sub)
    current = schedule["current_phase"]
    out: list[Obj] = []
    for i, entry in enumerate(entries):
        entry.only(*PHASE_PARAMS, *UNSUPPORTED_PHASE_PARAMS)
        _refuse_unsupported(entry, UNSUPPORTED_PHASE_PARAMS)
        if i == 0:
            start = current["start_date"] if current else now
            if entry.raw("start_date") not in (None, "", "now") and entry.int("start_date") != start:
                raise invalid_request("You can not modify the start date of the current phase.",
                                      param=entry._name("start_date"))
        else:
            start = out[-1]["end_date"]
            if entry.raw("start_date") not in (None, "") and entry.int("start_date") != start:
                raise invalid_request("A phase starts when the previous one ends: leave start_date out or set it "
                                      f"to {start}.", param=entry._name("start_date"))
        currency = (entry.optional_str("currency") or sub["currency"]).lower()
        if currency != sub["currency"]:
            raise invalid_request("Every phase of this schedule bills in the subscription's currency "
                                  f"({sub['currency']}).", param=entry._name("currency"))
        items = _phase_items(sb, entry, currency)
        end = _phase_end(sb, entry, start, items, last=i == len(entries) - 1)
        if i == 0 and end <= now:
            raise invalid_request("The current phase must end in the future.", param=entry._name("end_date"))
        out.append(sched.new_phase(
            currency=currency, items=items, start=start, end=end,
            proration_behavior=entry.str("proration_behavior", "create_prorations", choices=sched.PRORATION)
            or "create_prorations",
            metadata=merge_metadata({}, entry.raw("metadata")), description=entry.optional_str("description")))
    return out


def _live(schedule: Obj, action: str) -> None:
    if schedule["status"] not in sched.LIVE:
        raise state_error(f"You cannot {action} a subscription schedule that is currently in the "
                          f"`{schedule['status']}` status. It must be in one of the following statuses: "
                          "`not_started`, `active`.")


CREATE_PARAMS = ("from_subscription", "customer", "phases", "start_date", "end_behavior", "metadata",
                 "default_settings", "billing_mode", "customer_account", "pause_schedules")


@route("POST", "/v1/subscription_schedules", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    sub_id = p.optional_str("from_subscription")
    if sub_id is None:
        raise invalid_request("The sandbox creates subscription schedules from an existing subscription only: "
                              "pass `from_subscription` (then update its phases).", param="from_subscription")
    others = set(p.data) - {"from_subscription", "metadata", "expand"}
    if others:
        raise invalid_request("When `from_subscription` is set, other parameters (such as phases) cannot be set; "
                              "update the schedule afterwards.", param=sorted(others)[0])
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


@route("GET", "/v1/subscription_schedules/{schedule_id}")
def retrieve(sb: Any, p: Params, schedule_id: str) -> Obj:
    return get_schedule(sb, schedule_id)


@route("POST", "/v1/subscription_schedules/{schedule_id}", params=(
    "phases", "end_behavior", "metadata", "proration_behavior", "default_settings", "pause_schedules"))
def update(sb: Any, p: Params, schedule_id: str) -> Obj:
    schedule = get_schedule(sb, schedule_id)
    for unsupported in ("default_settings", "pause_schedules"):
        if unsupported in p:
            raise invalid_request(f"The sandbox does not support `{unsupported}` on subscription schedules yet.",
                                  param=unsupported)
    _live(schedule, "update")
    sub = get_subscription(sb, schedule["subscription"], "subscription")
    behavior = p.str("proration_behavior", "create_prorations", choices=sched.PRORATION) or "create_prorations"
    end_behavior = _end_behavior(p, schedule["end_behavior"])
    metadata = merge_metadata(schedule["metadata"], p.raw("metadata"))
    phases = _phases(sb, p, schedule, sub) if "phases" in p else schedule["phases"]
    return sched.replace_phases(sb, schedule, sub, phases, end_behavior=end_behavior, metadata=metadata,
                                proration_behavior=behavior)


@route("POST", "/v1/subscription_schedules/{schedule_id}/release", params=("preserve_cancel_date",))
def release(sb: Any, p: Params, schedule_id: str) -> Obj:
    schedule = get_schedule(sb, schedule_id)
    _live(schedule, "release")
    sub = sb.store.get(schedule["subscription"] or "", "subscription")
    when = now_for(sb, sub) if sub is not None else sb.clock.now_int()
    return sched.release(sb, schedule, when, preserve_cancel_date=bool(p.bool("preserve_cancel_date", False)))


@route("POST", "/v1/subscription_schedules/{schedule_id}/cancel", params=("invoice_now", "prorate"))
def cancel(sb: Any, p: Params, schedule_id: str) -> Obj:
    """Cancels the subscription now as well (``invoice_now`` and ``prorate`` default to true, as Stripe's)."""
    schedule = get_schedule(sb, schedule_id)
    _live(schedule, "cancel")
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
