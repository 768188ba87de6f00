"""Products: create, retrieve, update, delete, list (``active``, ``ids[]`` filters)."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..listing import LIST_PARAMS, paginate
from ..params import Params
from ..routing import route
from ..store import Obj
from .prices import new_price
from .product_records import apply_fields, get_product, new_product

FIELDS = ("name", "active", "description", "images", "metadata", "shippable", "statement_descriptor",
          "tax_code", "unit_label", "url", "marketing_features")


@route("POST", "/v1/products", params=(*FIELDS, "id", "default_price_data"))
def create(sb: Any, p: Params) -> Obj:
    product = new_product(sb, p, p.optional_str("id"))
    price_data = p.dict("default_price_data")
    if price_data is not None:
        price = new_price(sb, price_data, product["id"])
        product["default_price"] = price["id"]
        sb.store.save(product)
    return product


@route("GET", "/v1/products/{product_id}")
def retrieve(sb: Any, p: Params, product_id: str) -> Obj:
    return get_product(sb, product_id, "id")


@route("POST", "/v1/products/{product_id}", params=(*FIELDS, "default_price"))
def update(sb: Any, p: Params, product_id: str) -> Obj:
    product = get_product(sb, product_id, "id")
    before = dict(product)
    apply_fields(product, p)
    if "default_price" in p:
        price_id = p.optional_str("default_price")
        if price_id is not None and sb.store.get(price_id, "price") is None:
            raise no_such("price", price_id, "default_price")
        product["default_price"] = price_id
    product["updated"] = sb.clock.now_int()
    sb.store.save(product)
    emit(sb, "product.updated", product, changed(product, before))
    return product


@route("DELETE", "/v1/products/{product_id}")
def delete(sb: Any, p: Params, product_id: str) -> Obj:
    product = get_product(sb, product_id, "id")
    if sb.store.collection("price", "product", product_id):
        raise invalid_request("This product cannot be deleted because it has one or more user-created prices.")
    emit(sb, "product.deleted", product)
    sb.store.delete(product_id)
    return {"id": product_id, "object": "product", "deleted": True}


@route("GET", "/v1/products", params=(*LIST_PARAMS, "active", "ids", "created", "shippable", "url"))
def list_(sb: Any, p: Params) -> Obj:
    active = p.bool("active")
    ids = set(p.str_list("ids"))

    def where(product: Obj) -> bool:
        return (active is None or product["active"] == active) and (not ids or product["id"] in ids)

    return paginate(sb.store, sb.store.collection("product"), p, "/v1/products", where)
