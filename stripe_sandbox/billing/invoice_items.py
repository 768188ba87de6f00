"""Invoice items: one-off charges and proration adjustments waiting for a customer's next invoice.

A customer's pending items are listed under one key-value entry (``pending_items:<customer>``), so that
building an invoice looks only at them, however many invoice items the customer had before.
"""

from __future__ import annotations

from typing import Any

from ..events import emit
from ..ids import new_id
from ..store import Obj
from . import invoicing
from .time import clock_of, now_for


def _key(customer_id: str) -> str:
    return f"pending_items:{customer_id}"


def pending_ids(sb: Any, customer_id: str) -> list[str]:
    return list(sb.store.kv.get(_key(customer_id)) or [])


def new_invoice_item(sb: Any, customer: Obj, *, amount: int, currency: str, description: str | None,
                     period: tuple[int, int] | None = None, quantity: int = 1, price: Obj | None = None,
                     subscription: str | None = None, proration: bool = False, discountable: bool = True,
                     metadata: dict[str, str] | None = None, invoice: Obj | None = None,
                     unit_amount_decimal: str | None = None) -> Obj:
    """Store an invoice item (pending unless ``invoice`` is a draft to add it to) and announce it."""
    now = now_for(sb, customer)
    clock = clock_of(sb, customer)
    start, end = period or (now, now)
    item: Obj = {
        "id": new_id("ii", 24),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "date": now,
        "description": description,
        "discountable": discountable and not proration,
        "discounts": [],
        "invoice": invoice["id"] if invoice else None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "net_amount": amount,
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription}}
        if subscription else None,
        "period": {"end": end, "start": start},
        "pricing": {"type": "price_details", "price_details": {"price": price["id"], "product": price["product"]}
                    if price else None,
                    "unit_amount_decimal": unit_amount_decimal if unit_amount_decimal is not None else
                    (price["unit_amount_decimal"] if price else str(amount // max(quantity, 1)))},
        "proration": proration,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": clock["id"] if clock else None,
    }
    sb.store.add(item)
    if invoice is None:
        sb.store.set_kv(_key(customer["id"]), [*pending_ids(sb, customer["id"]), item["id"]])
    else:
        invoice["lines"]["data"].append(as_line(item, invoice["id"]))
        invoicing.refresh_totals(sb, invoice)
        sb.store.save(invoice)
    emit(sb, "invoiceitem.created", item)
    return item


def subscription_of(item: Obj) -> str | None:
    parent = item.get("parent") or {}
    return (parent.get("subscription_details") or {}).get("subscription")


def as_line(item: Obj, invoice_id: str) -> Obj:
    price_details = item["pricing"].get("price_details")
    price = {"id": price_details["price"], "product": price_details["product"],
             "unit_amount_decimal": item["pricing"]["unit_amount_decimal"]} if price_details else None
    return invoicing.line(invoice_id, amount=item["amount"], currency=item["currency"],
                          description=item["description"] or "", quantity=item["quantity"],
                          period=(item["period"]["start"], item["period"]["end"]), price=price,
                          subscription=subscription_of(item), invoice_item=item["id"],
                          proration=item["proration"], discountable=item["discountable"],
                          metadata=item["metadata"], unit_amount_decimal=item["pricing"]["unit_amount_decimal"])


def pending_lines(sb: Any, invoice: Obj, customer_id: str, subscription_id: str | None) -> list[Obj]:
    """The lines ``take_pending`` would add, leaving the items pending (previews)."""
    out = []
    for item_id in pending_ids(sb, customer_id):
        item = sb.store.get(item_id, "invoiceitem")
        if item is not None and subscription_of(item) in (None, subscription_id):
            out.append(as_line(item, invoice["id"]))
    return out


def take_pending(sb: Any, invoice: Obj, customer_id: str, subscription_id: str | None) -> list[Obj]:
    """Move the customer's pending items for ``subscription_id`` (or for no subscription) onto ``invoice``."""
    taken: list[Obj] = []
    left: list[str] = []
    for item_id in pending_ids(sb, customer_id):
        item = sb.store.get(item_id, "invoiceitem")
        if item is None:
            continue
        owner = subscription_of(item)
        if owner is None or owner == subscription_id:
            item["invoice"] = invoice["id"]
            sb.store.save(item)
            taken.append(as_line(item, invoice["id"]))
        else:
            left.append(item_id)
    sb.store.set_kv(_key(customer_id), left)
    return taken


def remove_pending(sb: Any, item: Obj) -> None:
    customer_id = item["customer"]
    sb.store.set_kv(_key(customer_id), [i for i in pending_ids(sb, customer_id) if i != item["id"]])
