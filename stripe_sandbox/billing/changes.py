"""Changing a subscription's items mid-period, with Stripe's time-based proration (to the second).

For a change at time ``t`` in the period ``[s, e)``, the old item is credited for the unused time and the new
one charged for the remaining time:

    credit = -round(old unit amount x old quantity x (e - t) / (e - s))
    charge =  round(new unit amount x new quantity x (e - t) / (e - s))

each rounded half up to the currency's minor unit, as separate lines "Unused time on ..." and "Remaining
time on ...". A change of billing interval restarts the billing cycle at ``t`` and bills the new period at
once, crediting the unused old time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import invalid_request
from ..params import Params, merge_metadata
from ..resources.prices import get_price
from ..store import Obj
from . import subscriptions as subs


@dataclass
class ItemChange:
    item: Obj | None  # None for a new item
    price: Obj | None  # None when the item is deleted
    quantity: int
    metadata: dict[str, str] | None = None


@dataclass
class Plan:
    changes: list[ItemChange]
    prorations: list[dict[str, Any]] = field(default_factory=list)
    new_cycle: bool = False  # the interval changes: the cycle restarts now


def prorated(amount: int, remaining: int, whole: int) -> int:
    """``amount * remaining / whole`` rounded half up, in integers (no float error on large amounts)."""
    if whole <= 0:
        return 0
    sign = -1 if amount < 0 else 1
    return sign * ((2 * abs(amount) * remaining + whole) // (2 * whole))


def _day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%d %b %Y").lstrip("0")


def parse_items(sb: Any, sub: Obj, items_param: list[Params]) -> list[ItemChange]:
    """``items[]`` of an update: each entry adds a price, changes an item (``id``) or deletes one."""
    by_id = {i["id"]: i for i in subs.items(sub)}
    return [_parse_item(sb, entry, by_id) for entry in items_param]


def _parse_item(sb: Any, entry: Params, by_id: dict[str, Obj]) -> ItemChange:
    entry.only("id", "price", "quantity", "deleted", "metadata", "discounts", "tax_rates", "plan",
               "clear_usage", "billing_thresholds", "price_data")
    item = _named_item(entry, by_id)
    price_id = entry.optional_str("price") or entry.optional_str("plan")
    if entry.bool("deleted", False):
        if item is None:
            raise invalid_request("Pass the id of the item to delete.", param=entry._name("id"))
        return ItemChange(item, None, 0)
    if price_id is not None:
        price = get_price(sb, price_id, entry._name("price"))
    elif item is not None:
        price = item["price"]
    else:
        raise invalid_request("Missing required param: items[price].", param=entry._name("price"),
                              code="parameter_missing")
    subs.check_price(price, entry._name("price"))
    quantity = entry.int("quantity", item["quantity"] if item else 1, minimum=0)
    assert quantity is not None
    metadata = merge_metadata(item["metadata"] if item else {}, entry.raw("metadata")) \
        if "metadata" in entry else None
    return ItemChange(item, price, quantity, metadata)


def _named_item(entry: Params, by_id: dict[str, Obj]) -> Obj | None:
    item_id = entry.optional_str("id")
    if item_id is None:
        return None
    item = by_id.get(item_id)
    if item is None:
        raise invalid_request(f"Subscription item {item_id} does not belong to this subscription.",
                              param=entry._name("id"))
    return item


def plan(sb: Any, sub: Obj, changes: list[ItemChange], t: int, behavior: str) -> Plan:
    """What the changes cost: the proration lines (not yet stored) for a change at ``t``."""
    result = Plan(changes)
    remaining_prices = [c.price for c in changes if c.price is not None]
    kept = [i["price"] for i in subs.items(sub) if all(c.item is not i for c in changes)]
    if not remaining_prices and not kept:
        raise invalid_request("A subscription needs at least one item.", param="items")
    subs.check_intervals(remaining_prices + kept)
    current = subs.recurring(sub)
    new_rec = (remaining_prices + kept)[0]["recurring"]
    result.new_cycle = (new_rec["interval"], new_rec["interval_count"]) != current
    if behavior == "none" or sub["status"] == "trialing":
        return result
    start, end = subs.period(sub)
    if not start <= t <= end:
        raise invalid_request("proration_date must fall within the current billing period.", param="proration_date")
    for change in changes:
        if not _unchanged(change):
            result.prorations.extend(_prorations(sb, change, t, (start, end), result.new_cycle))
    return result


def _unchanged(change: ItemChange) -> bool:
    """The same price at the same quantity: nothing to prorate."""
    return change.item is not None and change.price is not None and \
        change.price["id"] == change.item["price"]["id"] and change.quantity == change.item["quantity"]


def _prorations(sb: Any, change: ItemChange, t: int, span: tuple[int, int], new_cycle: bool) -> list[dict[str, Any]]:
    """The old item credited for the time left after ``t``, the new price charged for it (unless a new billing
    cycle starts at ``t``, which bills the new price in full)."""
    start, end = span
    remaining, whole = end - t, end - start
    old_amount = int(change.item["price"]["unit_amount"] or 0) * change.item["quantity"] if change.item else 0
    new_amount = int(change.price["unit_amount"] or 0) * change.quantity if change.price else 0
    out = []
    if change.item is not None and old_amount:
        out.append(proration_line(sb, change.item["price"], change.item["quantity"],
                                  -prorated(old_amount, remaining, whole), "Unused", t, end))
    if change.price is not None and new_amount and not new_cycle:
        out.append(proration_line(sb, change.price, change.quantity,
                                  prorated(new_amount, remaining, whole), "Remaining", t, end))
    return out


def proration_line(sb: Any, price: Obj, quantity: int, amount: int, kind: str, t: int, end: int) -> dict[str, Any]:
    product = sb.store.get(price["product"]) or {}
    name = product.get("name", price["product"])
    what = f"{quantity} × {name}" if quantity != 1 else name
    return {"amount": amount, "price": price, "quantity": quantity, "period": (t, end),
            "description": f"{kind} time on {what} after {_day(t)}"}


def _apply_change(sb: Any, sub: Obj, change: ItemChange, t: int, span: tuple[int, int], *, persist: bool) -> None:
    """One item added, removed, or given its new price, quantity and metadata."""
    data = subs.items(sub)
    if change.item is None:
        assert change.price is not None
        item = subs.new_item(sb, sub, change.price, change.quantity, change.metadata or {}, t, span)
        if persist:
            sb.store.add(item)
        data.append(item)
    elif change.price is None:
        data.remove(change.item)
        if persist:
            sb.store.delete(change.item["id"])
    else:
        item = change.item
        if change.price["id"] != item["price"]["id"]:
            item["price"] = dict(change.price)
            item["plan"] = subs.plan_of(change.price)
        item["quantity"] = change.quantity
        if change.metadata is not None:
            item["metadata"] = change.metadata


def apply(sb: Any, sub: Obj, result: Plan, t: int, *, persist: bool = True) -> None:
    """Put the new items in place (periods unchanged, or restarted at ``t`` for a new interval); without
    ``persist``, only on this (copied) subscription, for previews."""
    span = subs.period(sub)
    if result.new_cycle:
        price = next(c.price for c in result.changes if c.price is not None)
        rec = price["recurring"]
        span = subs.first_period(t, rec["interval"], rec["interval_count"])
        sub["billing_cycle_anchor"] = t
    data = subs.items(sub)
    for change in result.changes:
        _apply_change(sb, sub, change, t, span, persist=persist)
    for item in data:
        item["current_period_start"], item["current_period_end"] = span
        if persist:
            sb.store.save(item)
