"""A customer's tax IDs: ``POST/GET /v1/customers/{id}/tax_ids``, retrieve and delete one, and ``tax_id_data``
on customer create. Values are checked for format (``tax_id_invalid``) and verified at once as Stripe's test mode
does (``billing.tax_table``: a value containing ``111111111`` is ``unverified``). Automatic tax reads them: an EU
business with a verified VAT ID buying across an EU border gets the reverse charge."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params
from ..routing import route
from ..store import INDEXED_FIELDS, Obj
from .customer_records import get_customer
from .tax_calculations import checked_tax_ids, tax_id_verification

INDEXED_FIELDS["tax_id"] = ("customer",)

COUNTRY_OF_TYPE = {"gb_vat": "GB", "au_abn": "AU", "ca_gst_hst": "CA", "us_ein": "US"}


def _country(kind: str, value: str) -> str | None:
    if kind == "eu_vat":
        return "GR" if value.startswith("EL") else value[:2]
    return COUNTRY_OF_TYPE.get(kind)


def add_tax_id(sb: Any, customer: Obj, entry: Params, param: str) -> Obj:
    """Check, store and announce one tax ID of ``customer``."""
    (checked,) = checked_tax_ids([entry], param)
    tax_id: Obj = {
        "id": new_id("txi", 24), "object": "tax_id", "country": _country(checked["type"], checked["value"]),
        "created": sb.clock.now_int(), "customer": customer["id"], "customer_account": None, "livemode": False,
        "owner": {"customer": customer["id"], "customer_account": None, "type": "customer"},
        "type": checked["type"], "value": checked["value"], "verification": tax_id_verification(checked["value"]),
    }
    sb.store.add(tax_id)
    emit(sb, "customer.tax_id.created", tax_id)
    return tax_id


def tax_ids_of(sb: Any, customer_id: str) -> list[Obj]:
    collection = sb.store.collection("tax_id", "customer", customer_id)
    return [sb.store.objects[i] for i in collection.ids if i in sb.store.objects]


@route("POST", "/v1/customers/{customer_id}/tax_ids", params=("type", "value", "expand"))
def create(sb: Any, p: Params, customer_id: str) -> Obj:
    customer = get_customer(sb, customer_id, "id")
    if "type" not in p or "value" not in p:
        missing = "type" if "type" not in p else "value"
        raise invalid_request(f"Missing required param: {missing}.", param=missing, code="parameter_missing")
    return add_tax_id(sb, customer, Params({"type": p.raw("type"), "value": p.raw("value")}), "tax_id")


def _get(sb: Any, customer_id: str, tax_id: str) -> Obj:
    get_customer(sb, customer_id, "id")
    found = sb.store.get(tax_id, "tax_id")
    if found is None or found["customer"] != customer_id:
        raise no_such("tax_id", tax_id)
    return found


@route("GET", "/v1/customers/{customer_id}/tax_ids/{tax_id}")
def retrieve(sb: Any, p: Params, customer_id: str, tax_id: str) -> Obj:
    return _get(sb, customer_id, tax_id)


@route("DELETE", "/v1/customers/{customer_id}/tax_ids/{tax_id}")
def delete(sb: Any, p: Params, customer_id: str, tax_id: str) -> Obj:
    found = _get(sb, customer_id, tax_id)
    sb.store.delete(tax_id)
    emit(sb, "customer.tax_id.deleted", found)
    return {"id": tax_id, "object": "tax_id", "deleted": True}


@route("GET", "/v1/customers/{customer_id}/tax_ids", params=LIST_PARAMS)
def list_(sb: Any, p: Params, customer_id: str) -> Obj:
    get_customer(sb, customer_id, "id")
    return paginate(sb.store, sb.store.collection("tax_id", "customer", customer_id), p,
                    f"/v1/customers/{customer_id}/tax_ids")
