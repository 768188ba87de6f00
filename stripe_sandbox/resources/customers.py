"""Customers: create (with ``tax_id_data``), retrieve, update, delete, list (``email`` filter)."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .customer_records import get_customer
from .customer_tax_ids import add_tax_id
from .payment_methods import attach_to_customer, resolve_payment_method
from .tax_calculations import checked_tax_ids

FIELDS = ("address", "description", "email", "name", "phone", "preferred_locales", "shipping",
          "invoice_settings", "test_clock", "payment_method", "tax_exempt", "balance", "invoice_prefix")


def _apply(sb: Any, customer: Obj, p: Params, attached: Obj | None = None) -> None:
    for name in ("description", "email", "name", "phone"):
        if name in p:
            customer[name] = p.optional_str(name)
    if "address" in p:
        customer["address"] = _address(p.dict("address"))
    if "shipping" in p:
        customer["shipping"] = _shipping(p.dict("shipping"))
    if "preferred_locales" in p:
        customer["preferred_locales"] = p.str_list("preferred_locales")
    if "tax_exempt" in p:
        customer["tax_exempt"] = p.str("tax_exempt", choices=("none", "exempt", "reverse"))
    if "balance" in p:
        customer["balance"] = p.int("balance", 0)
    if "invoice_prefix" in p:
        customer["invoice_prefix"] = p.str("invoice_prefix")
    if "metadata" in p:
        customer["metadata"] = merge_metadata(customer["metadata"], p.raw("metadata"))
    settings = p.dict("invoice_settings")
    if settings is not None:
        _apply_invoice_settings(sb, customer, settings, p, attached)


def _apply_invoice_settings(sb: Any, customer: Obj, settings: Params, p: Params, attached: Obj | None) -> None:
    if "default_payment_method" in settings:
        pm_id = settings.optional_str("default_payment_method")
        if attached is not None and pm_id == p.optional_str("payment_method"):
            pm_id = attached["id"]  # ``pm_card_visa`` twice names the one card attached by this request
        if pm_id is not None and sb.store.get(pm_id, "payment_method") is None:
            raise no_such("PaymentMethod", pm_id, "invoice_settings[default_payment_method]")
        customer["invoice_settings"]["default_payment_method"] = pm_id
    for name in ("footer",):
        if name in settings:
            customer["invoice_settings"][name] = settings.optional_str(name)


def _shipping(p: Params | None) -> Obj | None:
    if p is None:
        return None
    return {"address": _address(p.dict("address")), "name": p.str("name"), "phone": p.str("phone")}


def _address(p: Params | None) -> Obj | None:
    if p is None:
        return None
    return {k: p.str(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}


@route("POST", "/v1/customers", params=(*FIELDS, "metadata", "tax_id_data"))
def create(sb: Any, p: Params) -> Obj:
    customer_id = new_id("cus", 14)
    customer: Obj = {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": sb.clock.now_int(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": customer_id[4:12].upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    if "test_clock" in p:
        clock_id = p.str("test_clock")
        if sb.store.get(clock_id, "test_helpers.test_clock") is None:
            raise no_such("test clock", clock_id or "", "test_clock")
        customer["test_clock"] = clock_id
    pm_id = p.optional_str("payment_method")
    attached = resolve_payment_method(sb, pm_id, "payment_method") if pm_id is not None else None
    _apply(sb, customer, p, attached)
    tax_id_data = p.dict_list("tax_id_data")
    checked_tax_ids([entry.only("type", "value") for entry in tax_id_data], "tax_id_data")
    sb.store.add(customer)
    if attached is not None:
        attach_to_customer(sb, attached["id"], customer)
    emit(sb, "customer.created", customer)
    for i, entry in enumerate(tax_id_data):
        add_tax_id(sb, customer, entry, f"tax_id_data[{i}]")
    return customer


@route("GET", "/v1/customers/{customer_id}")
def retrieve(sb: Any, p: Params, customer_id: str) -> Obj:
    customer = sb.store.get(customer_id, "customer")
    if customer is None:
        raise no_such("customer", customer_id)
    return customer


@route("POST", "/v1/customers/{customer_id}", params=(*FIELDS, "metadata", "default_source"))
def update(sb: Any, p: Params, customer_id: str) -> Obj:
    customer = get_customer(sb, customer_id, "id")
    if "test_clock" in p:
        raise invalid_request("Received unknown parameter: test_clock", param="test_clock")
    before = dict(customer)
    before["invoice_settings"] = dict(customer["invoice_settings"])
    _apply(sb, customer, p)
    sb.store.save(customer)
    previous = changed(customer, before)
    if previous:
        emit(sb, "customer.updated", customer, previous)
    return customer


@route("DELETE", "/v1/customers/{customer_id}")
def delete(sb: Any, p: Params, customer_id: str) -> Obj:
    customer = get_customer(sb, customer_id, "id")
    emit(sb, "customer.deleted", customer)
    sb.store.delete(customer_id)
    return {"id": customer_id, "object": "customer", "deleted": True}


@route("GET", "/v1/customers", params=(*LIST_PARAMS, "email", "created", "test_clock"))
def list_(sb: Any, p: Params) -> Obj:
    email = p.optional_str("email")
    clock = p.optional_str("test_clock")
    where = (lambda c: c.get("test_clock") == clock) if clock else None
    collection = sb.store.collection("customer", "email", email) if email else sb.store.collection("customer")
    return paginate(sb.store, collection, p, "/v1/customers", where)
