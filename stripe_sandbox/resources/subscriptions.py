"""Subscriptions: create, retrieve, update (items with proration, cancel at period end, pause collection,
trial end, discounts), cancel, resume, list. The rules live in ``stripe_sandbox.billing``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..billing import changes as ch, invoice_tax, invoicing, subscriptions as subs
from ..billing.invoice_items import new_invoice_item
from ..billing.subscription_params import (PRORATION, cancellation_feedback, payment_method, refuse_unsupported,
                                           timestamp_or_now, trial_settings)
from ..billing.subscription_updates import apply_discounts, charge_now, update_subscription
from ..billing.time import clock_of, now_for, period_containing
from ..errors import invalid_request, no_such, state_error
from ..events import emit
from ..expand import expandable
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer
from .prices import get_price


def get_subscription(sb: Any, sub_id: str, param: str = "id") -> Obj:
    sub = sb.store.get(sub_id, "subscription")
    if sub is None:
        raise no_such("subscription", sub_id, param)
    return sub


CREATE_PARAMS = (
    "customer", "items", "default_payment_method", "trial_period_days", "trial_end", "trial_from_plan",
    "cancel_at_period_end", "cancel_at", "proration_behavior", "payment_behavior", "discounts", "metadata",
    "collection_method", "days_until_due", "description", "off_session", "payment_settings", "trial_settings",
    "currency", "default_tax_rates", "automatic_tax", "backdate_start_date", "billing_cycle_anchor",
    "invoice_settings", "add_invoice_items", "on_behalf_of", "billing_mode")


@route("POST", "/v1/subscriptions", params=CREATE_PARAMS)
def create(sb: Any, p: Params) -> Obj:
    return subscribe(sb, p)


SUBSCRIBE_UNSUPPORTED = ("backdate_start_date", "billing_cycle_anchor", "add_invoice_items", "on_behalf_of")
ITEM_PARAMS = ("price", "quantity", "metadata", "discounts", "tax_rates", "plan", "price_data", "billing_thresholds")


@dataclass(frozen=True)
class _ItemRequest:
    price: Obj
    quantity: int | None
    metadata: dict[str, str]


def subscribe(sb: Any, p: Params, *, at: int | None = None, schedule_id: str | None = None) -> Obj:
    """``POST /v1/subscriptions``; a schedule starting its subscription passes its start time (a timer may run
    a little after it on the sandbox clock) and its id, which the subscription carries from its first event."""
    refuse_unsupported(p, SUBSCRIBE_UNSUPPORTED)
    customer_id = p.str("customer", required=True)
    assert customer_id is not None
    customer = get_customer(sb, customer_id)
    items = _item_requests(sb, p)
    now = now_for(sb, customer) if at is None else at
    collection, days_until_due = _collection(p)
    behavior = p.str("payment_behavior", "allow_incomplete",
                     choices=("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"))
    if behavior == "pending_if_incomplete":
        raise invalid_request("payment_behavior=pending_if_incomplete is only for updates.", param="payment_behavior")
    p.str("proration_behavior", choices=PRORATION)
    first = items[0].price
    trial_end = _trial_end(p, now, first)
    interval, count = first["recurring"]["interval"], first["recurring"]["interval_count"]
    span = (now, trial_end) if trial_end else subs.first_period(now, interval, count)
    cancel_at = timestamp_or_now(p, "cancel_at", now)
    sub = _new_subscription(sb, p, customer, currency=first["currency"], now=now, span=span, trial_end=trial_end,
                            cancel_at=cancel_at, collection=collection, days_until_due=days_until_due,
                            schedule_id=schedule_id)
    sub["automatic_tax"] = invoice_tax.requested(sb, p, customer) or dict(invoice_tax.OFF)
    sub["discounts"] = apply_discounts(sb, p, sub, customer, now)
    for request in items:
        item = subs.new_item(sb, sub, request.price, request.quantity or 0, request.metadata, now, span)
        sb.store.add(item)
        sub["items"]["data"].append(item)
    invoice = subs.period_invoice(sb, sub, billing_reason="subscription_create", span=span, invoice_period=(now, now))
    sub["latest_invoice"] = invoice["id"]
    sb.store.add(sub)
    emit(sb, "customer.subscription.created", sub)
    invoicing.save_new(sb, invoice)
    invoicing.finalize(sb, invoice)
    _first_payment(sb, sub, invoice, behavior, now)
    subs.schedule(sb, sub)
    return sub


def _item_requests(sb: Any, p: Params) -> list[_ItemRequest]:
    """``items``: active recurring prices sharing one interval, with their quantities and metadata."""
    entries = p.dict_list("items", required=True)
    if not entries:
        raise invalid_request("Missing required param: items.", param="items", code="parameter_missing")
    out = []
    for entry in entries:
        entry.only(*ITEM_PARAMS)
        price_id = entry.optional_str("price") or entry.optional_str("plan")
        if price_id is None:
            raise invalid_request("Missing required param: items[0][price].", param=entry._name("price"),
                                  code="parameter_missing")
        price = get_price(sb, price_id, entry._name("price"))
        subs.check_price(price, entry._name("price"))
        out.append(_ItemRequest(price, entry.int("quantity", 1, minimum=0), merge_metadata({}, entry.raw("metadata"))))
    subs.check_intervals([request.price for request in out])
    return out


def _collection(p: Params) -> tuple[str | None, int | None]:
    """``collection_method`` and ``days_until_due`` (which ``send_invoice`` requires)."""
    collection = p.str("collection_method", "charge_automatically",
                       choices=("charge_automatically", "send_invoice"))
    days_until_due = p.int("days_until_due", minimum=0)
    if collection == "send_invoice" and days_until_due is None:
        raise invalid_request("Missing required param: days_until_due.", param="days_until_due",
                              code="parameter_missing")
    return collection, days_until_due


def _trial_end(p: Params, now: int, price: Obj) -> int | None:
    """When the trial ends (``trial_end``, ``trial_period_days`` or the price's ``trial_from_plan``); None for
    no trial."""
    trial_end = timestamp_or_now(p, "trial_end", now)
    days = p.int("trial_period_days", minimum=0, maximum=730)
    if days is None and p.bool("trial_from_plan", False):
        days = price["recurring"].get("trial_period_days")
    if trial_end is None and days:
        trial_end = now + days * 86400
    return None if trial_end == now else trial_end


def _new_subscription(sb: Any, p: Params, customer: Obj, *, currency: str, now: int, span: tuple[int, int],
                      trial_end: int | None, cancel_at: int | None, collection: str | None,
                      days_until_due: int | None, schedule_id: str | None) -> Obj:
    """The subscription object, without items or discounts yet, not stored."""
    clock = clock_of(sb, customer)
    sub: Obj = {
        "id": new_id("sub", 24),
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": span[0] if not trial_end else trial_end,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": cancel_at,
        "cancel_at_period_end": bool(p.bool("cancel_at_period_end", False)),
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "feedback_option": None, "reason": None},
        "collection_method": collection,
        "created": now,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": days_until_due,
        "default_payment_method": payment_method(sb, p, customer),
        "default_source": None,
        "default_tax_rates": [],
        "description": p.optional_str("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "description": None, "footer": None,
                             "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [], "has_more": False, "url": ""},
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": merge_metadata({}, p.raw("metadata")),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": schedule_id,
        "start_date": now,
        "status": "trialing" if trial_end else ("active" if collection == "send_invoice" else "incomplete"),
        "test_clock": clock["id"] if clock else None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": trial_settings(p),
        "trial_start": now if trial_end else None,
    }
    sub["items"]["url"] = f"/v1/subscription_items?subscription={sub['id']}"
    return sub


def _first_payment(sb: Any, sub: Obj, invoice: Obj, behavior: str | None, now: int) -> None:
    """Charge the first invoice off-session, unless ``default_incomplete`` leaves it for the payer;
    ``error_if_incomplete`` ends a subscription whose payment fails, and raises the payment's error."""
    if invoice["status"] != "open" or sub["collection_method"] != "charge_automatically" \
            or behavior == "default_incomplete":
        return
    error = invoicing.attempt_payment(sb, invoice, sub["default_payment_method"], off_session=True)
    if error is not None and behavior == "error_if_incomplete":
        invoicing.void(sb, invoice)
        sub["status"] = "incomplete_expired"
        sub["ended_at"] = now
        sb.store.save(sub)
        raise error

@route("GET", "/v1/subscriptions/{sub_id}")
def retrieve(sb: Any, p: Params, sub_id: str) -> Obj:
    return get_subscription(sb, sub_id)


UPDATE_PARAMS = (
    "items", "proration_behavior", "proration_date", "cancel_at_period_end", "cancel_at", "cancellation_details",
    "pause_collection", "trial_end", "trial_from_plan", "metadata", "default_payment_method", "description",
    "discounts", "collection_method", "days_until_due", "payment_behavior", "off_session", "trial_settings",
    "payment_settings", "default_tax_rates", "automatic_tax", "billing_cycle_anchor", "invoice_settings",
    "add_invoice_items", "on_behalf_of")


@route("POST", "/v1/subscriptions/{sub_id}", params=UPDATE_PARAMS)
def update(sb: Any, p: Params, sub_id: str) -> Obj:
    return update_subscription(sb, p, get_subscription(sb, sub_id))


@route("DELETE", "/v1/subscriptions/{sub_id}", params=("invoice_now", "prorate", "cancellation_details"))
def cancel(sb: Any, p: Params, sub_id: str) -> Obj:
    sub = get_subscription(sb, sub_id)
    if sub["status"] in subs.TERMINAL:
        raise invalid_request(f"No such subscription: '{sub_id}'", param="id", code="resource_missing", status=404)
    now = now_for(sb, sub)
    comment, feedback = cancellation_feedback(p) or (None, None)
    customer = sb.store.objects[sub["customer"]]
    if p.bool("prorate", False) and sub["status"] != "trialing":
        start, end = subs.period(sub)
        for item in subs.items(sub):  # credit the unused time of every item
            full = int(item["price"]["unit_amount"] or 0) * item["quantity"]
            line = ch.proration_line(sb, item["price"], item["quantity"],
                                     -ch.prorated(full, end - now, end - start), "Unused", now, end)
            if line["amount"]:
                new_invoice_item(sb, customer, amount=line["amount"], currency=sub["currency"],
                                 description=line["description"], period=line["period"], quantity=line["quantity"],
                                 price=line["price"], subscription=sub["id"], proration=True)
    if p.bool("invoice_now", False):
        invoice = subs.period_invoice(sb, sub, billing_reason="subscription_update", span=(now, now),
                                      invoice_period=(now, now), with_items=False)
        if invoice["lines"]["data"]:
            sub["latest_invoice"] = invoice["id"]
            charge_now(sb, sub, invoice)
    sub["canceled_at"] = now
    subs.end(sb, sub, when=now, reason="cancellation_requested", comment=comment, feedback=feedback)
    return sub


@route("POST", "/v1/subscriptions/{sub_id}/resume", params=(
    "billing_cycle_anchor", "proration_behavior", "proration_date", "payment_behavior"))
def resume(sb: Any, p: Params, sub_id: str) -> Obj:
    sub = get_subscription(sb, sub_id)
    if sub["status"] != "paused":
        raise state_error("Only a paused subscription can be resumed.")
    anchor = p.str("billing_cycle_anchor", "now", choices=("now", "unchanged"))
    now = now_for(sb, sub)
    before = subs.snapshot(sub)
    interval, count = subs.recurring(sub)
    span = subs.first_period(now, interval, count) if anchor == "now" else subs.next_period(sub, now)
    if anchor == "now":
        sub["billing_cycle_anchor"] = now
    for item in subs.items(sub):
        item["current_period_start"], item["current_period_end"] = span
        sb.store.save(item)
    sub["status"] = "active"
    behavior = p.str("proration_behavior", "create_prorations", choices=PRORATION)
    invoice = None
    if anchor == "now" or behavior != "none":
        invoice = subs.period_invoice(sb, sub, billing_reason="subscription_cycle", span=span,
                                      invoice_period=(now, now))
        if anchor == "unchanged":  # the rest of a period already under way: its remaining time only
            _prorate_item_lines(sb, invoice, now, period_containing(sub["billing_cycle_anchor"], interval, count, now))
        sub["latest_invoice"] = invoice["id"]
    subs.emit_updated(sb, sub, before)
    emit(sb, "customer.subscription.resumed", sub)
    if invoice is not None:
        charge_now(sb, sub, invoice)
    subs.schedule(sb, sub)
    return sub


def _prorate_item_lines(sb: Any, invoice: Obj, t: int, whole: tuple[int, int]) -> None:
    for line in invoice["lines"]["data"]:
        details = line["parent"].get("subscription_item_details")
        if details is None or line["pricing"]["price_details"] is None:
            continue
        price = sb.store.objects[line["pricing"]["price_details"]["price"]]
        proration = ch.proration_line(sb, price, line["quantity"],
                                      ch.prorated(line["amount"], whole[1] - t, whole[1] - whole[0]), "Remaining",
                                      t, whole[1])
        line.update(amount=proration["amount"], subtotal=proration["amount"], description=proration["description"])
        details["proration"] = True


@route("GET", "/v1/subscriptions", params=(
    *LIST_PARAMS, "customer", "status", "price", "plan", "test_clock", "collection_method", "created",
    "current_period_end", "current_period_start", "automatic_tax", "customer_account"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    status = p.str("status", choices=("active", "all", "canceled", "ended", "incomplete", "incomplete_expired",
                                      "past_due", "paused", "trialing", "unpaid"))
    price = p.optional_str("price") or p.optional_str("plan")
    clock = p.optional_str("test_clock")
    collection_method = p.optional_str("collection_method")

    def where(sub: Obj) -> bool:
        if status is None and sub["status"] in ("canceled", "incomplete_expired"):
            return False  # Stripe's default lists every subscription that has not ended
        if status == "ended" and sub["status"] not in ("canceled", "incomplete_expired"):
            return False
        if status not in (None, "all", "ended") and sub["status"] != status:
            return False
        if price and all(i["price"]["id"] != price for i in subs.items(sub)):
            return False
        if collection_method and sub["collection_method"] != collection_method:
            return False
        return clock is None or sub["test_clock"] == clock

    if customer:
        collection = sb.store.collection("subscription", "customer", customer)
    elif clock:
        collection = sb.store.collection("subscription", "test_clock", clock)
    else:
        collection = sb.store.collection("subscription")
    return paginate(sb.store, collection, p, "/v1/subscriptions", where)


@expandable("subscription", "discounts")
def _expand_discounts(sb: Any, sub: Obj) -> list[Obj]:
    return [sb.store.objects[d] for d in sub["discounts"] if d in sb.store.objects]
