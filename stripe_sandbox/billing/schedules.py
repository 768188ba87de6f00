"""Subscription schedules: phases of a subscription applied as its clock reaches them.

A schedule manages one subscription: an existing one (``from_subscription``), or the one it creates from its
first phase when it starts (``schedule_start``; until then it is ``not_started``). Its phases follow each other
without gaps (``end_date`` of one is the ``start_date`` of the next); ``current_phase`` is the phase in effect.

- A phase that starts at the subscription's period end is applied by the renewal itself (``renewal.RENEWING``),
  before the renewal invoice is made: the invoice bills the new phase's prices, nothing is prorated, and a
  new interval restarts the billing cycle at that boundary. This is how a downgrade waits for the period end.
- A phase that starts mid-period is applied at its start time with the phase's ``proration_behavior``,
  through the same code as ``POST /v1/subscriptions/{id}`` (same prorations, same events).
- When the last phase ends, ``end_behavior`` decides: ``release`` leaves the subscription running on the last
  phase's items (schedule ``released``, ``subscription_schedule.released``); ``cancel`` ends the subscription
  then (it carries ``cancel_at``, as Stripe's does) and the schedule is ``completed``
  (``subscription_schedule.completed``).
- A subscription that ends otherwise (canceled, or Stripe giving up on payments) cancels its schedule
  (``subscription_schedule.canceled``).

Timers follow ``timeline``'s rule: never cancelled, each checks when it runs that its phase is still due.
"""

from __future__ import annotations

from typing import Any

from ..events import emit
from ..ids import new_id
from ..params import Params
from ..store import Obj
from . import changes as ch, renewal, subscriptions as subs, timeline
from .subscription_updates import update_subscription
from .time import add_interval, interval_seconds, now_for

SCHEDULE = "subscription_schedule"
LIVE = ("not_started", "active")
PRORATION = ("always_invoice", "create_prorations", "none")


def get(sb: Any, schedule_id: str | None) -> Obj | None:
    return sb.store.get(schedule_id or "", SCHEDULE)


def of_subscription(sb: Any, sub: Obj) -> Obj | None:
    schedule = get(sb, sub.get("schedule"))
    return schedule if schedule is not None and schedule["status"] in LIVE else None


# -- objects -------------------------------------------------------------------------------------------

def phase_item(price_id: str, quantity: int, metadata: dict[str, str] | None = None) -> Obj:
    return {"billing_thresholds": None, "discounts": [], "metadata": dict(metadata or {}), "plan": price_id,
            "price": price_id, "quantity": quantity, "tax_rates": []}


def new_phase(*, currency: str, items: list[Obj], start: int, end: int, proration_behavior: str = "create_prorations",
              metadata: dict[str, str] | None = None, description: str | None = None,
              trial_end: int | None = None) -> Obj:
    return {
        "add_invoice_items": [], "application_fee_percent": None, "billing_cycle_anchor": None,
        "billing_thresholds": None, "collection_method": None, "currency": currency, "default_payment_method": None,
        "default_tax_rates": [], "description": description, "discounts": [], "end_date": end,
        "invoice_settings": None, "items": items, "metadata": dict(metadata or {}), "on_behalf_of": None,
        "proration_behavior": proration_behavior, "start_date": start, "transfer_data": None, "trial_end": trial_end,
    }


def phase_interval(sb: Any, phase: Obj) -> tuple[str, int]:
    rec = sb.store.objects[phase["items"][0]["price"]]["recurring"]
    return rec["interval"], rec["interval_count"]


def new_schedule(*, customer: str, clock: str | None, phases: list[Obj], created: int, status: str,
                 subscription: str | None, end_behavior: str, collection_method: str = "charge_automatically",
                 default_payment_method: str | None = None, metadata: dict[str, str] | None = None) -> Obj:
    """The object, not yet stored; ``current_phase`` is the first phase once the schedule is active."""
    first = phases[0]
    return {
        "id": new_id("sub_sched", 24),
        "object": SCHEDULE,
        "application": None,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "canceled_at": None,
        "completed_at": None,
        "created": created,
        "current_phase": {"end_date": first["end_date"], "start_date": first["start_date"]}
        if status == "active" else None,
        "customer": customer,
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic", "billing_thresholds": None,
            "collection_method": collection_method, "default_payment_method": default_payment_method,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "days_until_due": None,
                                 "description": None, "footer": None, "issuer": {"type": "self"}},
            "on_behalf_of": None, "transfer_data": None},
        "end_behavior": end_behavior,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "pause_schedules": [],
        "phases": phases,
        "released_at": None,
        "released_subscription": None,
        "status": status,
        "subscription": subscription,
        "test_clock": clock,
    }


def create_from_subscription(sb: Any, sub: Obj) -> Obj:
    """A schedule with one phase, the subscription as it is until its period end (Stripe's
    ``from_subscription``): ``end_behavior`` release, or cancel when the subscription cancels at period end."""
    start, end = subs.period(sub)
    phase = new_phase(currency=sub["currency"], start=start, end=end,
                      items=[phase_item(i["price"]["id"], i["quantity"], i["metadata"]) for i in subs.items(sub)],
                      trial_end=sub["trial_end"] if sub["status"] == "trialing" else None)
    schedule = new_schedule(customer=sub["customer"], clock=sub.get("test_clock"), phases=[phase],
                            created=now_for(sb, sub), status="active", subscription=sub["id"],
                            end_behavior="cancel" if sub["cancel_at_period_end"] else "release",
                            collection_method=sub["collection_method"])
    sb.store.add(schedule)
    emit(sb, "subscription_schedule.created", schedule)
    before = subs.snapshot(sub)
    sub["schedule"] = schedule["id"]
    subs.emit_updated(sb, sub, before)
    set_timers(sb, schedule)
    return schedule


def current_index(schedule: Obj) -> int | None:
    current = schedule["current_phase"]
    if current is None:
        return None
    for i, phase in enumerate(schedule["phases"]):
        if phase["start_date"] == current["start_date"]:
            return i
    return None


def next_phase(schedule: Obj) -> Obj | None:
    """The phase that follows the current one, if any (what a pending plan change will become)."""
    i = current_index(schedule)
    if i is None or i + 1 >= len(schedule["phases"]):
        return None
    return schedule["phases"][i + 1]


def set_timers(sb: Any, schedule: Obj) -> None:
    clock = schedule.get("test_clock")
    for phase in schedule["phases"][1:]:
        timeline.at_once(sb, clock, phase["start_date"], "schedule.advance", schedule["id"], phase["start_date"])
    end = schedule["phases"][-1]["end_date"]
    timeline.at_once(sb, clock, end, "schedule.advance", schedule["id"], end)


def _cancel_at_key(schedule: Obj) -> str:
    return f"schedule_cancel_at:{schedule['id']}"  # store.kv: the cancel_at this schedule put on its subscription


def sync_cancel_at(sb: Any, schedule: Obj, sub: Obj) -> None:
    """``end_behavior=cancel`` shows on the subscription as ``cancel_at`` the schedule's end (and ends it
    then, through the subscription's own timers); switching back to ``release`` takes it away again."""
    before = subs.snapshot(sub)
    mine = sb.store.kv.get(_cancel_at_key(schedule))
    if schedule["end_behavior"] == "cancel":
        sub["cancel_at"] = schedule["phases"][-1]["end_date"]
        sb.store.set_kv(_cancel_at_key(schedule), sub["cancel_at"])
    elif mine is not None and sub["cancel_at"] == mine:
        sub["cancel_at"] = None
        sb.store.set_kv(_cancel_at_key(schedule), None)
    subs.emit_updated(sb, sub, before)
    subs.schedule(sb, sub)


def replace_phases(sb: Any, schedule: Obj, sub: Obj, phases: list[Obj], *, end_behavior: str | None = None,
                   metadata: dict[str, str] | None = None, proration_behavior: str = "create_prorations") -> Obj:
    """New phases (the first being the current one), applied to the subscription at once when the current
    phase's items changed; ``subscription_schedule.updated``."""
    schedule["phases"] = phases
    if end_behavior is not None:
        schedule["end_behavior"] = end_behavior
    if metadata is not None:
        schedule["metadata"] = metadata
    first = phases[0]
    schedule["current_phase"] = {"end_date": first["end_date"], "start_date": first["start_date"]}
    sb.store.save(schedule)
    if _differs(sub, first):
        _enter_mid_period(sb, sub, first, now_for(sb, sub), proration_behavior)
    sync_cancel_at(sb, schedule, sub)
    emit(sb, "subscription_schedule.updated", schedule)
    set_timers(sb, schedule)
    return schedule


def schedule_price_at_period_end(sb: Any, sub: Obj, price: Obj, quantity: int = 1) -> Obj:
    """The change Stripe's portal makes for a downgrade under ``schedule_at_period_end``: keep the current
    items until the period ends, then one period of ``price``, then release."""
    schedule = of_subscription(sb, sub) or create_from_subscription(sb, sub)
    i = current_index(schedule) or 0
    current = schedule["phases"][i]
    rec = price["recurring"]
    start = current["end_date"]
    later = new_phase(currency=sub["currency"], items=[phase_item(price["id"], quantity)], start=start,
                      end=add_interval(start, rec["interval"], rec["interval_count"]))
    return replace_phases(sb, schedule, sub, [current, later], end_behavior="release")


# -- moving through phases ------------------------------------------------------------------------------

def phase_entered_at(schedule: Obj, when: int) -> Obj | None:
    """The phase in effect at ``when`` when it is not the current one: the phase to enter then."""
    index = next((i for i, ph in enumerate(schedule["phases"]) if ph["start_date"] <= when < ph["end_date"]), None)
    return None if index is None or index == current_index(schedule) else schedule["phases"][index]


def _differs(sub: Obj, phase: Obj) -> bool:
    have = sorted((i["price"]["id"], i["quantity"]) for i in subs.items(sub))
    want = sorted((i["price"], i["quantity"]) for i in phase["items"])
    return have != want


def item_changes(sb: Any, sub: Obj, phase: Obj) -> list[ch.ItemChange]:
    wanted = {i["price"]: i for i in phase["items"]}
    out: list[ch.ItemChange] = []
    for item in subs.items(sub):
        entry = wanted.pop(item["price"]["id"], None)
        if entry is None:
            out.append(ch.ItemChange(item, None, 0))
        elif entry["quantity"] != item["quantity"]:
            out.append(ch.ItemChange(item, item["price"], entry["quantity"]))
    for price_id, entry in wanted.items():
        out.append(ch.ItemChange(None, sb.store.objects[price_id], entry["quantity"], entry["metadata"]))
    return _as_swap(out)


def _as_swap(changes: list[ch.ItemChange]) -> list[ch.ItemChange]:
    """A swap of one price for another keeps the item (as a price update does), so its id stays."""
    removed = [c for c in changes if c.item is not None and c.price is None]
    added = [c for c in changes if c.item is None]
    if len(removed) != 1 or len(added) != 1:
        return changes
    kept = [c for c in changes if c not in (removed[0], added[0])]
    return [*kept, ch.ItemChange(removed[0].item, added[0].price, added[0].quantity)]


def _enter_at_boundary(sb: Any, sub: Obj, phase: Obj, boundary: int, *, persist: bool = True) -> None:
    """Swap the items as the period ends (no proration); a new interval restarts the cycle at ``boundary``.
    The renewal that called this then bills the new items for the period that starts."""
    changes = item_changes(sb, sub, phase)
    old = subs.recurring(sub)
    ch.apply(sb, sub, ch.Plan(changes), boundary, persist=persist)
    if subs.recurring(sub) != old:
        sub["billing_cycle_anchor"] = boundary


def _enter_mid_period(sb: Any, sub: Obj, phase: Obj, when: int, behavior: str) -> None:
    entries: list[dict[str, Any]] = []
    for change in item_changes(sb, sub, phase):
        if change.item is None:
            assert change.price is not None
            entries.append({"price": change.price["id"], "quantity": str(change.quantity)})
        elif change.price is None:
            entries.append({"id": change.item["id"], "deleted": "true"})
        else:
            entries.append({"id": change.item["id"], "price": change.price["id"], "quantity": str(change.quantity)})
    if entries:
        update_subscription(sb, Params({"items": entries, "proration_behavior": behavior,
                                        "proration_date": str(when)}), sub)


def advance(sb: Any, schedule: Obj, when: int, *, at_renewal: bool = False) -> None:
    """Bring the schedule to ``when``: enter the phase that holds it, or end the schedule after its last."""
    if schedule["status"] != "active":
        return
    sub = sb.store.get(schedule["subscription"] or "", "subscription")
    if sub is None or sub["status"] in subs.TERMINAL:
        return
    phases = schedule["phases"]
    if when >= phases[-1]["end_date"]:
        finish(sb, schedule, sub, phases[-1]["end_date"], at_renewal=at_renewal)
        return
    phase = phase_entered_at(schedule, when)
    if phase is None:
        return
    if _differs(sub, phase):
        if at_renewal:
            _enter_at_boundary(sb, sub, phase, when)
        else:
            _enter_mid_period(sb, sub, phase, when, phase["proration_behavior"])
    schedule["current_phase"] = {"end_date": phase["end_date"], "start_date": phase["start_date"]}
    sb.store.save(schedule)
    emit(sb, "subscription_schedule.updated", schedule)


# -- what previews foresee (on a copy of the subscription, storing nothing) --------------------------------

def phase_due_within_period(sb: Any, sub: Obj) -> Obj | None:
    """The first phase still to come that starts before the period ends and changes the items: ``advance``
    applies it at its start with its ``proration_behavior``."""
    schedule = of_subscription(sb, sub)
    if schedule is None or schedule["status"] != "active":
        return None
    now, end = now_for(sb, sub), subs.period(sub)[1]
    return next((ph for ph in schedule["phases"] if now < ph["start_date"] < end and _differs(sub, ph)), None)


def foresee_renewal(sb: Any, copy: Obj, boundary: int) -> None:
    """Put on ``copy`` the phase that the renewal at ``boundary`` enters, as ``advance(at_renewal=True)``
    does. After the last phase there is nothing to put: the subscription goes on as it is (``release``) or
    ends then (``cancel``, which its ``cancel_at`` shows)."""
    schedule = of_subscription(sb, copy)
    if schedule is None or schedule["status"] != "active" or boundary >= schedule["phases"][-1]["end_date"]:
        return
    phase = phase_entered_at(schedule, boundary)
    if phase is not None and _differs(copy, phase):
        _enter_at_boundary(sb, copy, phase, boundary, persist=False)


def finish(sb: Any, schedule: Obj, sub: Obj, when: int, *, at_renewal: bool = False) -> None:
    if schedule["end_behavior"] == "cancel":
        subs.end(sb, sub, when=when, reason="cancellation_requested")  # ENDED marks the schedule completed
        return
    release(sb, schedule, when, emit_subscription=not at_renewal)


def release(sb: Any, schedule: Obj, when: int, *, preserve_cancel_date: bool = False,
            emit_subscription: bool = True) -> Obj:
    """The subscription goes on by itself (``released``); a ``cancel_at`` the schedule set goes with it
    unless ``preserve_cancel_date``."""
    sub = sb.store.get(schedule["subscription"] or "", "subscription")
    if sub is not None:
        before = subs.snapshot(sub)
        if sub.get("schedule") == schedule["id"]:
            sub["schedule"] = None
        mine = sb.store.kv.get(_cancel_at_key(schedule))
        if not preserve_cancel_date and mine is not None and sub["cancel_at"] == mine:
            sub["cancel_at"] = None
        if emit_subscription:
            subs.emit_updated(sb, sub, before)
            subs.schedule(sb, sub)
        else:
            sb.store.save(sub)
    schedule.update(status="released", released_at=when, released_subscription=schedule["subscription"],
                    subscription=None, current_phase=None)
    sb.store.save(schedule)
    emit(sb, "subscription_schedule.released", schedule)
    return schedule


@timeline.timer("schedule.advance")
def _advance_due(sb: Any, schedule_id: str, when: int) -> None:
    schedule = get(sb, schedule_id)
    if schedule is None or schedule["status"] != "active":
        return
    sub = sb.store.get(schedule["subscription"] or "", "subscription")
    if sub is not None and sub["status"] not in subs.TERMINAL and subs.items(sub) and subs.period(sub)[1] == when:
        renewal.renew(sb, sub["id"], when)  # a phase at a period end is the renewal's to apply (no-op if it ran)
    advance(sb, schedule, when)


def _on_renewal(sb: Any, sub: Obj, boundary: int) -> None:
    schedule = of_subscription(sb, sub)
    if schedule is not None and schedule["status"] == "active":
        advance(sb, schedule, boundary, at_renewal=True)


def _on_end(sb: Any, sub: Obj) -> None:
    schedule = of_subscription(sb, sub)
    if schedule is None:
        return
    ended = sub["ended_at"] or now_for(sb, sub)
    if schedule["end_behavior"] == "cancel" and ended >= schedule["phases"][-1]["end_date"]:
        schedule.update(status="completed", completed_at=ended, current_phase=None)
        sb.store.save(schedule)
        emit(sb, "subscription_schedule.completed", schedule)
    else:
        schedule.update(status="canceled", canceled_at=now_for(sb, sub), current_phase=None)
        sb.store.save(schedule)
        emit(sb, "subscription_schedule.canceled", schedule)


def shorter(old: Obj, new: Obj) -> bool:
    """Whether ``new`` bills over a shorter interval than ``old`` (Stripe's ``shortening_interval``)."""
    o, n = old["recurring"], new["recurring"]
    return interval_seconds(n["interval"], n["interval_count"]) < interval_seconds(o["interval"], o["interval_count"])


if _on_renewal not in renewal.RENEWING:
    renewal.RENEWING.append(_on_renewal)
if _on_end not in subs.ENDED:
    subs.ENDED.append(_on_end)
