"""Prices: one-time and recurring; ``lookup_key`` (unique among prices, movable with
``transfer_lookup_key``), list filters ``lookup_keys[]``, ``active``, ``product``, ``type``, ``currency``."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Collection, Obj
from .product_records import get_product, new_product

INTERVALS = ("day", "week", "month", "year")


def get_price(sb: Any, price_id: str, param: str = "price") -> Obj:
    price = sb.store.get(price_id, "price")
    if price is None:
        raise no_such("price", price_id, param)
    return price


def _currency(p: Params) -> str:
    currency = (p.str("currency", required=True) or "").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_request(f"Invalid currency: {currency}.", param=p._name("currency"))
    return currency


def _recurring(p: Params | None) -> Obj | None:
    if p is None:
        return None
    p.only("interval", "interval_count", "usage_type", "aggregate_usage", "meter", "trial_period_days")
    interval = p.str("interval", required=True, choices=INTERVALS)
    count = p.int("interval_count", 1, minimum=1)
    assert count is not None
    limit = {"day": 1095, "week": 156, "month": 36, "year": 3}[interval or "month"]
    if count > limit:
        raise invalid_request("The maximum billing period is three years.", param=p._name("interval_count"))
    return {
        "interval": interval,
        "interval_count": count,
        "meter": p.str("meter"),
        "trial_period_days": p.int("trial_period_days"),
        "usage_type": p.str("usage_type", "licensed", choices=("licensed", "metered")),
    }


def _take_lookup_key(sb: Any, lookup_key: str, transfer: bool, param: str = "lookup_key") -> None:
    holders = sb.store.collection("price", "lookup_key", lookup_key)
    for holder_id in list(holders.ids):
        if not transfer:
            raise invalid_request(
                f"A price (`{holder_id}`) already uses that lookup key.", param=param)
        holder = sb.store.objects[holder_id]
        holder["lookup_key"] = None
        sb.store.save(holder)


def _unit_amount(p: Params) -> tuple[int | None, str | None]:
    """``unit_amount``, or a whole ``unit_amount_decimal``; both None for a custom amount."""
    unit_amount = p.int("unit_amount", minimum=0, maximum=99_999_999)
    decimal = p.str("unit_amount_decimal")
    if unit_amount is None and decimal is None and "custom_unit_amount" not in p:
        raise invalid_request("Missing required param: unit_amount.", param=p._name("unit_amount"),
                              code="parameter_missing")
    if unit_amount is None and decimal is not None:
        try:
            unit_amount = int(float(decimal)) if float(decimal) == int(float(decimal)) else None
        except ValueError:
            raise invalid_request(f"Invalid decimal: {decimal}", param=p._name("unit_amount_decimal")) from None
    return unit_amount, decimal


def _product(sb: Any, p: Params) -> str:
    """The price's product: made from ``product_data``, or ``product`` (which must exist)."""
    product_data = p.dict("product_data")
    if product_data is not None:
        return str(new_product(sb, product_data)["id"])
    product_id = p.str("product", required=True)
    assert product_id is not None
    get_product(sb, product_id, p._name("product"))
    return product_id


def new_price(sb: Any, p: Params, product_id: str | None = None, *, emit_event: bool = True) -> Obj:
    """A price from create parameters (also ``price_data`` in Checkout and ``default_price_data``)."""
    currency = _currency(p)
    unit_amount, decimal = _unit_amount(p)
    if product_id is None:
        product_id = _product(sb, p)
    recurring = _recurring(p.dict("recurring"))
    lookup_key = p.optional_str("lookup_key")
    if lookup_key:
        _take_lookup_key(sb, lookup_key, bool(p.bool("transfer_lookup_key", False)), p._name("lookup_key"))
    price: Obj = {
        "id": new_id("price", 24),
        "object": "price",
        "active": p.bool("active", True),
        "billing_scheme": p.str("billing_scheme", "per_unit", choices=("per_unit", "tiered")),
        "created": sb.clock.now_int(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": merge_metadata({}, p.raw("metadata")),
        "nickname": p.optional_str("nickname"),
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": p.str("tax_behavior", "unspecified", choices=("exclusive", "inclusive", "unspecified")),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": decimal if decimal is not None else (
            str(unit_amount) if unit_amount is not None else None),
    }
    sb.store.add(price)
    if emit_event:
        emit(sb, "price.created", price)
    return price


@route("POST", "/v1/prices", params=(
    "currency", "unit_amount", "unit_amount_decimal", "product", "product_data", "recurring", "lookup_key",
    "transfer_lookup_key", "active", "metadata", "nickname", "tax_behavior", "billing_scheme",
    "custom_unit_amount", "currency_options", "tiers", "tiers_mode", "transform_quantity"))
def create(sb: Any, p: Params) -> Obj:
    return new_price(sb, p)


@route("GET", "/v1/prices/{price_id}")
def retrieve(sb: Any, p: Params, price_id: str) -> Obj:
    return get_price(sb, price_id, "id")


@route("POST", "/v1/prices/{price_id}", params=(
    "active", "metadata", "nickname", "lookup_key", "transfer_lookup_key", "tax_behavior", "currency_options"))
def update(sb: Any, p: Params, price_id: str) -> Obj:
    price = get_price(sb, price_id, "id")
    before = dict(price)
    if "active" in p:
        price["active"] = p.bool("active", True)
    if "nickname" in p:
        price["nickname"] = p.optional_str("nickname")
    if "tax_behavior" in p:
        price["tax_behavior"] = p.str("tax_behavior", choices=("exclusive", "inclusive", "unspecified"))
    if "metadata" in p:
        price["metadata"] = merge_metadata(price["metadata"], p.raw("metadata"))
    if "lookup_key" in p:
        lookup_key = p.optional_str("lookup_key")
        if lookup_key and lookup_key != price["lookup_key"]:
            _take_lookup_key(sb, lookup_key, bool(p.bool("transfer_lookup_key", False)))
        price["lookup_key"] = lookup_key
    sb.store.save(price)
    previous = changed(price, before)
    if previous:
        emit(sb, "price.updated", price, previous)
    return price


@route("GET", "/v1/prices", params=(
    *LIST_PARAMS, "active", "currency", "lookup_keys", "product", "type", "recurring", "created"))
def list_(sb: Any, p: Params) -> Obj:
    active = p.bool("active")
    currency = (p.optional_str("currency") or "").lower() or None
    type_ = p.str("type", choices=("one_time", "recurring"))
    lookup_keys = p.str_list("lookup_keys")
    product = p.optional_str("product")
    if len(lookup_keys) > 10:
        raise invalid_request("You may pass at most 10 lookup keys.", param="lookup_keys")

    def where(price: Obj) -> bool:
        return ((active is None or price["active"] == active)
                and (currency is None or price["currency"] == currency)
                and (type_ is None or price["type"] == type_)
                and (product is None or price["product"] == product)
                and (not lookup_keys or price["lookup_key"] in lookup_keys))

    store = sb.store
    if len(lookup_keys) == 1:
        collection = store.collection("price", "lookup_key", lookup_keys[0])
    elif lookup_keys:
        # A few keys: merge their (tiny) collections rather than scan every price.
        collection = Collection()
        for key in dict.fromkeys(lookup_keys):
            for object_id in store.collection("price", "lookup_key", key).ids:
                collection.add(store.seq_of[object_id], object_id)
    elif product:
        collection = store.collection("price", "product", product)
    else:
        collection = store.collection("price")
    return paginate(store, collection, p, "/v1/prices", where)
