"""Invoices: create (a draft, optionally with the customer's pending invoice items), retrieve, update,
finalize, pay (also ``paid_out_of_band``), void, mark_uncollectible, delete a draft, list, lines, preview.

``hosted_invoice_url`` and ``invoice_pdf`` point at ``/invoice/{id}`` and ``/invoice/{id}/pdf`` (see
``invoice_page``)."""

from __future__ import annotations

from typing import Any

from ..billing import SUBSCRIPTION_OF_INVOICE, changes as ch, invoice_tax, invoicing, preview, renewal, schedules
from ..billing import subscriptions as subs
from ..billing.discounts import create_discount, resolve_discounts
from ..billing.invoice_items import take_pending
from ..billing.time import now_for
from ..errors import invalid_request, no_such, state_error
from ..events import changed, emit
from .events import created_filter
from ..expand import expandable
from ..listing import LIST_PARAMS, list_object, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer
from .subscriptions import get_subscription


def get_invoice(sb: Any, invoice_id: str, param: str = "invoice") -> Obj:
    invoice = invoicing.get(sb, invoice_id)
    if invoice is None:
        raise no_such("invoice", invoice_id, param)
    return invoice


@route("POST", "/v1/invoices", params=(
    "customer", "auto_advance", "collection_method", "days_until_due", "due_date", "description", "metadata",
    "default_payment_method", "discounts", "pending_invoice_items_behavior", "subscription", "currency", "footer",
    "automatic_tax", "custom_fields", "statement_descriptor", "rendering", "payment_settings"))
def create(sb: Any, p: Params) -> Obj:
    customer_id = p.str("customer", required=True)
    assert customer_id is not None
    customer = get_customer(sb, customer_id)
    collection = p.str("collection_method", "charge_automatically",
                       choices=("charge_automatically", "send_invoice")) or "charge_automatically"
    behavior = p.str("pending_invoice_items_behavior", "exclude", choices=("exclude", "include"))
    currency = (p.optional_str("currency") or customer.get("currency") or "usd").lower()
    sub = get_subscription(sb, p.str("subscription") or "", "subscription") if p.optional_str("subscription") else None
    auto_advance = p.bool("auto_advance", True)
    invoice = invoicing.new_invoice(
        sb, customer, currency=currency, billing_reason="manual", subscription=sub, collection_method=collection,
        auto_advance=bool(auto_advance), days_until_due=p.int("days_until_due", minimum=0),
        description=p.optional_str("description"), metadata=merge_metadata({}, p.raw("metadata")),
        default_payment_method=p.optional_str("default_payment_method"),
        automatic_tax=invoice_tax.requested(sb, p, customer))
    if p.int("due_date") is not None:
        invoice["due_date"] = p.int("due_date")
    if "footer" in p:
        invoice["footer"] = p.optional_str("footer")
    if behavior == "include":
        invoice["lines"]["data"].extend(take_pending(sb, invoice, customer_id, sub["id"] if sub else None))
    now = now_for(sb, customer)
    for redemption in resolve_discounts(sb, p.dict_list("discounts"), customer=customer, currency=currency):
        invoice["discounts"].append(create_discount(sb, redemption, customer=customer_id, start=now,
                                                    invoice=invoice["id"])["id"])
    invoicing.save_new(sb, invoice)
    if invoice["auto_advance"]:
        renewal.timeline_at_invoice(sb, invoice, invoice["automatically_finalizes_at"], "invoice.finalize",
                                    invoice["id"])
    return invoice


@route("GET", "/v1/invoices/{invoice_id}")
def retrieve(sb: Any, p: Params, invoice_id: str) -> Obj:
    return get_invoice(sb, invoice_id, "id")


@route("POST", "/v1/invoices/{invoice_id}", params=(
    "metadata", "description", "auto_advance", "footer", "days_until_due", "due_date", "default_payment_method",
    "collection_method"))
def update(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "id")
    before = dict(invoice)
    if invoice["status"] != "draft" and set(p.data) - {"metadata", "auto_advance", "expand"}:
        raise state_error("Only the metadata and auto_advance of a finalized invoice can change.")
    if "metadata" in p:
        invoice["metadata"] = merge_metadata(invoice["metadata"], p.raw("metadata"))
    for name in ("description", "footer", "default_payment_method"):
        if name in p:
            invoice[name] = p.optional_str(name)
    if "auto_advance" in p:
        invoice["auto_advance"] = bool(p.bool("auto_advance", True))
    if "collection_method" in p:
        invoice["collection_method"] = p.str("collection_method", choices=("charge_automatically", "send_invoice"))
    if "due_date" in p:
        invoice["due_date"] = p.int("due_date")
    sb.store.save(invoice)
    previous = changed(invoice, before)
    if previous:
        emit(sb, "invoice.updated", invoice, previous)
    return invoice


@route("DELETE", "/v1/invoices/{invoice_id}")
def delete(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "id")
    if invoice["status"] != "draft":
        raise state_error("You can only delete draft invoices.")
    emit(sb, "invoice.deleted", invoice)
    sb.store.delete(invoice_id)
    return {"id": invoice_id, "object": "invoice", "deleted": True}


@route("POST", "/v1/invoices/{invoice_id}/finalize", params=("auto_advance",))
def finalize(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "id")
    if "auto_advance" in p:
        invoice["auto_advance"] = bool(p.bool("auto_advance", True))
    invoicing.finalize(sb, invoice)
    return invoice


@route("POST", "/v1/invoices/{invoice_id}/pay", params=(
    "paid_out_of_band", "payment_method", "off_session", "forgive", "mandate", "source"))
def pay(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "id")
    if invoice["status"] == "draft":
        invoicing.finalize(sb, invoice)
        if invoice["status"] == "paid":
            return invoice
    if invoice["status"] != "open":
        raise state_error("Invoice is already paid" if invoice["status"] == "paid"
                          else f"You can only pay an open invoice (this one is {invoice['status']}).",
                          code="invoice_not_open" if invoice["status"] != "paid" else "invoice_already_paid")
    if p.bool("paid_out_of_band", False):
        invoicing.mark_paid(sb, invoice, out_of_band=True)
        return invoice
    if invoicing.payment_intent_of(sb, invoice) is None:
        invoicing._create_payment(sb, invoice, sb.store.get(invoice["customer"], "customer"))
    error = invoicing.attempt_payment(sb, invoice, p.optional_str("payment_method"),
                                      off_session=bool(p.bool("off_session", True)))
    if error is not None:
        raise error
    return invoice


@route("POST", "/v1/invoices/{invoice_id}/void")
def void(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "id")
    invoicing.void(sb, invoice)
    return invoice


@route("POST", "/v1/invoices/{invoice_id}/mark_uncollectible")
def mark_uncollectible(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "id")
    invoicing.mark_uncollectible(sb, invoice)
    return invoice


@route("GET", "/v1/invoices", params=(
    *LIST_PARAMS, "customer", "subscription", "status", "collection_method", "created", "due_date",
    "customer_account"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    sub = p.optional_str("subscription")
    status = p.str("status", choices=("draft", "open", "paid", "uncollectible", "void"))
    collection_method = p.optional_str("collection_method")
    low, high = created_filter(p)

    def where(invoice: Obj) -> bool:
        return ((status is None or invoice["status"] == status)
                and (low is None or invoice["created"] >= low) and (high is None or invoice["created"] <= high)
                and (customer is None or invoice["customer"] == customer)
                and (collection_method is None or invoice["collection_method"] == collection_method))

    if sub:
        collection = sb.store.collection("invoice", SUBSCRIPTION_OF_INVOICE, sub)
    elif customer:
        collection = sb.store.collection("invoice", "customer", customer)
    else:
        collection = sb.store.collection("invoice")
    return paginate(sb.store, collection, p, "/v1/invoices", where)


def _page(lines: list[Obj], p: Params, url: str) -> Obj:
    limit = p.int("limit", 10, minimum=1, maximum=100) or 10
    after, before = p.optional_str("starting_after"), p.optional_str("ending_before")
    ids = [line["id"] for line in lines]
    if after is not None:
        if after not in ids:
            raise no_such("line item", after, "starting_after")
        lines = lines[ids.index(after) + 1:]
    elif before is not None:
        if before not in ids:
            raise no_such("line item", before, "ending_before")
        lines = lines[:ids.index(before)][-limit:]
    return list_object(url, lines[:limit], len(lines) > limit)


@route("GET", "/v1/invoices/{invoice_id}/lines", params=LIST_PARAMS)
def lines(sb: Any, p: Params, invoice_id: str) -> Obj:
    invoice = get_invoice(sb, invoice_id, "invoice")
    return _page(invoice["lines"]["data"], p, f"/v1/invoices/{invoice_id}/lines")


@route("POST", "/v1/invoices/create_preview", params=(
    "customer", "subscription", "subscription_details", "discounts", "invoice_items", "preview_mode", "currency",
    "automatic_tax", "customer_details", "issuer", "on_behalf_of", "schedule", "schedule_details"))
def create_preview(sb: Any, p: Params) -> Obj:
    invoice = _preview(sb, p)
    tax = invoice_tax.requested(sb, p, get_customer(sb, invoice["customer"]))
    if tax is not None:  # the preview as if automatic tax were set so (or off)
        invoice["automatic_tax"] = invoice_tax.for_invoice(tax)
        invoicing.refresh_totals(sb, invoice)
    return invoice


def _preview(sb: Any, p: Params) -> Obj:
    sub_id = p.optional_str("subscription") or _subscription_of_schedule(sb, p.optional_str("schedule"))
    if sub_id is None:
        raise invalid_request("The sandbox previews subscription invoices only: pass `subscription`.",
                              param="subscription")
    sub = get_subscription(sb, sub_id, "subscription")
    customer_id = p.optional_str("customer")
    if customer_id is not None and customer_id != sub["customer"]:
        raise invalid_request("The subscription does not belong to this customer.", param="customer")
    if sub["status"] in subs.TERMINAL:
        raise state_error("No upcoming invoices for a canceled subscription.", code="invoice_upcoming_none")
    details = p.dict("subscription_details")
    if details is None or "items" not in details:
        invoice = preview.preview_next(sb, sub)
        if invoice is None:  # it ends by its period end (cancel_at_period_end, cancel_at, a schedule's cancel)
            raise state_error(f"No upcoming invoices for customer: {sub['customer']}", code="invoice_upcoming_none")
        return invoice
    details.only("items", "proration_behavior", "proration_date", "billing_cycle_anchor", "cancel_at",
                 "cancel_at_period_end", "cancel_now", "default_tax_rates", "resume_at", "start_date", "trial_end")
    behavior = details.str("proration_behavior", "create_prorations",
                           choices=("create_prorations", "none", "always_invoice")) or "create_prorations"
    t = details.int("proration_date") or now_for(sb, sub)
    result = ch.plan(sb, sub, ch.parse_items(sb, sub, details.dict_list("items")), t, behavior)
    return preview.preview_change(sb, sub, result, t, behavior)


def _subscription_of_schedule(sb: Any, schedule_id: str | None) -> str | None:
    """``schedule``: the next invoice of the subscription it manages (one not started yet has none here)."""
    if schedule_id is None:
        return None
    schedule = schedules.get(sb, schedule_id)
    if schedule is None:
        raise no_such("subscription_schedule", schedule_id, "schedule")
    if schedule["status"] != "active":
        raise invalid_request("The sandbox previews the invoices of an active schedule only.", param="schedule")
    return schedule["subscription"]


@expandable("invoice", "payments")
def _expand_payments(sb: Any, invoice: Obj) -> Obj:
    ids = sb.store.collection("invoice_payment", "invoice", invoice["id"]).ids
    return list_object(f"/v1/invoice_payments?invoice={invoice['id']}",
                       [sb.store.objects[i] for i in reversed(ids)], False)


@expandable("invoice", "confirmation_secret")
def _expand_confirmation_secret(sb: Any, invoice: Obj) -> Obj | None:
    pi = invoicing.payment_intent_of(sb, invoice)
    if pi is None or invoice["status"] != "open":
        return None
    return {"client_secret": pi.get("client_secret"), "type": "payment_intent"}


@expandable("invoice", "discounts")
def _expand_discounts(sb: Any, invoice: Obj) -> list[Obj]:
    return [sb.store.objects[d] for d in invoice["discounts"] if d in sb.store.objects]
