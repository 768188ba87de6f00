"""Products: create, retrieve, update, delete, list (``active``, ``ids[]`` filters)."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj

FIELDS = ("name", "active", "description", "images", "metadata", "shippable", "statement_descriptor",
          "tax_code", "unit_label", "url", "marketing_features")


def get_product(sb: Any, product_id: str, param: str = "product") -> Obj:
    product = sb.store.get(product_id, "product")
    if product is None:
        raise no_such("product", product_id, param)
    return product


def new_product(sb: Any, p: Params, product_id: str | None = None) -> Obj:
    """A product from create parameters (also used for ``product_data`` in prices and Checkout)."""
    name = p.str("name", required=True)
    if product_id and sb.store.get(product_id) is not None:
        raise invalid_request(f"Product already exists: {product_id}", param="id", code="resource_already_exists")
    now = sb.clock.now_int()
    product: Obj = {
        "id": product_id or new_id("prod", 14),
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "tax_details": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    _apply(product, p)
    sb.store.add(product)
    emit(sb, "product.created", product)
    return product


def _apply(product: Obj, p: Params) -> None:
    for name in ("description", "statement_descriptor", "tax_code", "unit_label", "url"):
        if name in p:
            product[name] = p.optional_str(name)
    if "name" in p:
        product["name"] = p.str("name", required=True)
    if "active" in p:
        product["active"] = p.bool("active", True)
    if "shippable" in p:
        product["shippable"] = p.bool("shippable")
    if "images" in p:
        product["images"] = p.str_list("images")
    if "marketing_features" in p:
        product["marketing_features"] = [{"name": f.str("name")} for f in p.dict_list("marketing_features")]
    if "metadata" in p:
        product["metadata"] = merge_metadata(product["metadata"], p.raw("metadata"))


@route("POST", "/v1/products", params=(*FIELDS, "id", "default_price_data"))
def create(sb: Any, p: Params) -> Obj:
    product = new_product(sb, p, p.optional_str("id"))
    price_data = p.dict("default_price_data")
    if price_data is not None:
        from .prices import new_price  # prices own price construction

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
    _apply(product, p)
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
