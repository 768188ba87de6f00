"""Products as stored objects: look one up, build one from create parameters, set its fields from parameters.

Below both ``products`` (the routes) and ``prices`` (a price's ``product_data`` makes a product, a product's
``default_price_data`` makes a price), so that neither imports the other's routes."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import emit
from ..ids import new_id
from ..params import Params, merge_metadata
from ..store import Obj


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
    apply_fields(product, p)
    sb.store.add(product)
    emit(sb, "product.created", product)
    return product


def apply_fields(product: Obj, p: Params) -> None:
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
