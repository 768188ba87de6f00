"""Invoice items: create (``amount``, or ``pricing[price]`` / ``price_data`` with ``quantity``), retrieve,
update and delete while pending, list (``customer``, ``pending``)."""

from __future__ import annotations

from typing import Any

from ..billing import invoicing
from ..billing.invoice_items import new_invoice_item, remove_pending
from ..errors import invalid_request, no_such, state_error
from ..events import changed, emit
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer
from .prices import get_price


def get_item(sb: Any, item_id: str) -> Obj:
    item = sb.store.get(item_id, "invoiceitem")
    if item is None:
        raise no_such("invoiceitem", item_id, "id")
    return item


@route("POST", "/v1/invoiceitems", params=(
    "customer", "amount", "currency", "description", "discountable", "invoice", "metadata", "period", "pricing",
    "price_data", "quantity", "subscription", "unit_amount_decimal", "tax_rates", "tax_behavior", "tax_code",
    "discounts", "customer_account", "quantity_decimal"))
def create(sb: Any, p: Params) -> Obj:
    customer_id = p.str("customer", required=True)
    assert customer_id is not None
    customer = get_customer(sb, customer_id)
    quantity = p.int("quantity", 1, minimum=0) or 0
    amount, currency, price = _amount(sb, p, quantity)
    invoice = _draft_invoice(sb, p)
    period = None
    if (given := p.dict("period")) is not None:
        start, end = given.int("start", required=True), given.int("end", required=True)
        period = (start or 0, end or 0)
    subscription = p.optional_str("subscription")
    if subscription is not None and sb.store.get(subscription, "subscription") is None:
        raise no_such("subscription", subscription, "subscription")
    return new_invoice_item(sb, customer, amount=amount, currency=currency, description=p.optional_str("description"),
                            period=period, quantity=quantity, price=price, subscription=subscription,
                            discountable=bool(p.bool("discountable", True)), invoice=invoice,
                            metadata=merge_metadata({}, p.raw("metadata")))


def _amount(sb: Any, p: Params, quantity: int) -> tuple[int, str, Obj | None]:
    """The amount and currency: from ``pricing[price]`` (that price too), ``price_data``, or ``amount``."""
    pricing = p.dict("pricing")
    if pricing is not None:
        pricing.only("price")
        price = get_price(sb, pricing.str("price", required=True) or "", "pricing[price]")
        return int(price["unit_amount"] or 0) * quantity, price["currency"], price
    data = p.dict("price_data")
    if data is not None:
        data.only("currency", "product", "unit_amount", "unit_amount_decimal", "tax_behavior")
        currency = (data.str("currency", required=True) or "").lower()
        return (data.int("unit_amount", required=True, minimum=0) or 0) * quantity, currency, None
    amount = p.int("amount")
    if amount is None:
        raise invalid_request("Missing required param: amount.", param="amount", code="parameter_missing")
    return amount, (p.str("currency", required=True) or "").lower(), None


def _draft_invoice(sb: Any, p: Params) -> Obj | None:
    """``invoice``: a draft the item goes on (None: the customer's next invoice takes it)."""
    if not p.optional_str("invoice"):
        return None
    invoice = sb.store.get(p.str("invoice") or "", "invoice")
    if invoice is None:
        raise no_such("invoice", p.str("invoice") or "", "invoice")
    if invoice["status"] != "draft":
        raise state_error("Invoice items can only be added to draft invoices.", param="invoice")
    return invoice


@route("GET", "/v1/invoiceitems/{item_id}")
def retrieve(sb: Any, p: Params, item_id: str) -> Obj:
    return get_item(sb, item_id)


@route("POST", "/v1/invoiceitems/{item_id}", params=("description", "metadata", "discountable", "amount"))
def update(sb: Any, p: Params, item_id: str) -> Obj:
    item = get_item(sb, item_id)
    if item["invoice"] is not None and set(p.data) - {"metadata", "expand"}:
        raise state_error("An invoice item on a finalized or draft invoice can only change its metadata.")
    before = dict(item)
    if "description" in p:
        item["description"] = p.optional_str("description")
    if "discountable" in p:
        item["discountable"] = bool(p.bool("discountable", True))
    if "amount" in p:
        item["amount"] = item["net_amount"] = p.int("amount") or 0
    if "metadata" in p:
        item["metadata"] = merge_metadata(item["metadata"], p.raw("metadata"))
    sb.store.save(item)
    previous = changed(item, before)
    if previous:
        emit(sb, "invoiceitem.updated", item, previous)
    return item


@route("DELETE", "/v1/invoiceitems/{item_id}")
def delete(sb: Any, p: Params, item_id: str) -> Obj:
    item = get_item(sb, item_id)
    if item["invoice"] is not None:
        invoice = sb.store.get(item["invoice"], "invoice")
        if invoice is None or invoice["status"] != "draft":
            raise state_error("You can only delete invoice items that are pending or on a draft invoice.")
        invoice["lines"]["data"] = [line for line in invoice["lines"]["data"]
                                    if (line["parent"].get("invoice_item_details") or {}).get("invoice_item")
                                    != item_id]
        invoicing.refresh_totals(sb, invoice)
        sb.store.save(invoice)
    else:
        remove_pending(sb, item)
    emit(sb, "invoiceitem.deleted", item)
    sb.store.delete(item_id)
    return {"id": item_id, "object": "invoiceitem", "deleted": True}


@route("GET", "/v1/invoiceitems", params=(*LIST_PARAMS, "customer", "invoice", "pending", "created",
                                            "customer_account"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    invoice = p.optional_str("invoice")
    pending = p.bool("pending")

    def where(item: Obj) -> bool:
        return ((invoice is None or item["invoice"] == invoice)
                and (pending is None or (item["invoice"] is None) == pending))

    collection = (sb.store.collection("invoiceitem", "customer", customer) if customer
                  else sb.store.collection("invoiceitem"))
    return paginate(sb.store, collection, p, "/v1/invoiceitems", where)
