"""The ``phases`` of a subscription schedule request (create or update), checked as Stripe checks them.

Phases follow each other without gaps: each later phase starts where the previous one ends; a phase ends at
``end_date``, after ``duration`` (``{interval, interval_count}``) or ``iterations`` billing intervals of its
prices, and the last phase, given none of these, after one interval. Every phase bills recurring prices of
one interval in the schedule's one currency. Where a phase starts is the caller's to say: an update keeps the
current phase's start, a creation takes the schedule's ``start_date``.
"""

from __future__ import annotations

from typing import Any

from ..billing import schedules as sched, subscriptions as subs
from ..billing.time import add_interval
from ..errors import invalid_request, missing_param
from ..params import Params, merge_metadata
from ..store import Obj
from .prices import get_price

PHASE_PARAMS = ("items", "start_date", "end_date", "duration", "iterations", "proration_behavior", "metadata",
                "description", "currency")
# A new schedule's own start_date places its first phase, so its phases take none (as Stripe's).
CREATE_PHASE_PARAMS = tuple(n for n in PHASE_PARAMS if n != "start_date")
UNSUPPORTED_PHASE_PARAMS = ("add_invoice_items", "application_fee_percent", "automatic_tax", "billing_cycle_anchor",
                            "billing_thresholds", "collection_method", "default_payment_method", "default_tax_rates",
                            "discounts", "invoice_settings", "on_behalf_of", "transfer_data", "trial", "trial_end")
ITEM_PARAMS = ("price", "plan", "quantity", "metadata")
UNSUPPORTED_ITEM_PARAMS = ("price_data", "discounts", "tax_rates", "billing_thresholds")


def refuse_unsupported(p: Params, names: tuple[str, ...]) -> None:
    for name in names:
        if name in p:
            raise invalid_request(f"The sandbox does not support `{p._name(name)}` on subscription schedules yet.",
                                  param=p._name(name))


def _items(sb: Any, entry: Params, currency: str | None) -> tuple[list[Obj], str]:
    """The phase's items and the currency they bill in (``currency``, or their prices' when not yet known)."""
    items = entry.dict_list("items", required=True)
    if not items:
        raise missing_param(entry._name("items"))
    out, prices = [], []
    for item in items:
        item.only(*ITEM_PARAMS, *UNSUPPORTED_ITEM_PARAMS)
        refuse_unsupported(item, UNSUPPORTED_ITEM_PARAMS)
        price_id = item.optional_str("price") or item.optional_str("plan")
        if price_id is None:
            raise missing_param(item._name("price"))
        price = get_price(sb, price_id, item._name("price"))
        subs.check_price(price, item._name("price"))
        currency = currency or price["currency"]
        if price["currency"] != currency:
            raise invalid_request(f"The price {price_id} is in {price['currency']}, but this schedule bills in "
                                  f"{currency}.", param=item._name("price"))
        prices.append(price)
        quantity = item.int("quantity", 1, minimum=0)
        assert quantity is not None
        out.append(sched.phase_item(price_id, quantity, merge_metadata({}, item.raw("metadata"))))
    subs.check_intervals(prices, entry._name("items"))
    assert currency is not None
    return out, currency


def _end(sb: Any, entry: Params, start: int, items: list[Obj], last: bool) -> int:
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


def _follows(entry: Params, previous: Obj) -> int:
    """A later phase starts when the previous one ends (its ``start_date``, if given, must say so)."""
    start: int = previous["end_date"]
    if entry.raw("start_date") not in (None, "") and entry.int("start_date") != start:
        raise invalid_request("A phase starts when the previous one ends: leave start_date out or set it "
                              f"to {start}.", param=entry._name("start_date"))
    return start


def _phase_currency(entry: Params, currency: str | None) -> str | None:
    """The schedule's currency, or the one this phase names (every phase bills in the same one)."""
    given = (entry.optional_str("currency") or "").lower() or None
    if given is not None and currency is not None and given != currency:
        raise invalid_request(f"Every phase of this schedule bills in {currency}.", param=entry._name("currency"))
    return currency or given


def parse(sb: Any, entries: list[Params], *, start: int, now: int, currency: str | None,
          accepted: tuple[str, ...] = PHASE_PARAMS) -> list[Obj]:
    """The phases, the first starting at ``start``; ``currency`` None lets the first phase's prices set it.
    The first phase's own ``start_date`` is the caller's to check."""
    if not entries:
        raise missing_param("phases")
    out: list[Obj] = []
    for i, entry in enumerate(entries):
        entry.only(*accepted, *UNSUPPORTED_PHASE_PARAMS)
        refuse_unsupported(entry, UNSUPPORTED_PHASE_PARAMS)
        if i > 0:
            start = _follows(entry, out[-1])
        items, currency = _items(sb, entry, _phase_currency(entry, currency))
        end = _end(sb, entry, start, items, last=i == len(entries) - 1)
        if i == 0 and end <= now:
            raise invalid_request("The current phase must end in the future.", param=entry._name("end_date"))
        out.append(sched.new_phase(
            currency=currency, items=items, start=start, end=end,
            proration_behavior=entry.str("proration_behavior", "create_prorations", choices=sched.PRORATION)
            or "create_prorations",
            metadata=merge_metadata({}, entry.raw("metadata")), description=entry.optional_str("description")))
    return out
