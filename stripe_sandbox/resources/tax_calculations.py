"""Stripe Tax calculations from the sandbox's table (``billing.tax_table``): ``POST /v1/tax/calculations``
(``currency``, ``line_items[]{amount, reference, quantity, tax_behavior, tax_code, product}``,
``customer_details{address, address_source, tax_ids[]}`` or ``customer``), retrieve, and its line items.

Tax settings must be active (a head office), as on Stripe. A buyer where the table collects nothing gets
``not_collecting``; an EU business with a verified VAT ID across an EU border gets ``reverse_charge``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..billing.tax_table import rate_for, reverse_charge, tax_id_problem, tax_of, verified
from ..errors import invalid_request, no_such
from ..ids import new_id
from ..params import Params
from ..routing import route
from ..store import Obj
from .tax import ADDRESS_FIELDS, _settings

EXPIRES_SECONDS = 90 * 86400  # a calculation can be turned into a transaction for 90 days


TAX_INACTIVE = ("Stripe Tax has not been activated on your account. Please visit https://stripe.com/docs/tax/set-up "
                "to get started.")


def tax_active(sb: Any) -> bool:
    return bool(_settings(sb)["status"] == "active")


def default_tax_behavior(sb: Any) -> str:
    """What an ``unspecified`` price's tax behaviour means: the tax settings' default, else exclusive."""
    return "inclusive" if _settings(sb)["defaults"].get("tax_behavior") == "inclusive" else "exclusive"


def head_office_country(sb: Any, param: str = "customer_details") -> str:
    """The seller's country; Stripe Tax must be active (a head office in the tax settings), as on Stripe."""
    settings = _settings(sb)
    if settings["status"] != "active":
        raise invalid_request(TAX_INACTIVE, param=param, code="stripe_tax_inactive")
    return str(settings["head_office"]["address"]["country"])


def checked_tax_ids(values: list[Params], param: str) -> list[dict[str, str]]:
    out = []
    for i, entry in enumerate(values):
        entry.only("type", "value")
        kind, value = entry.str("type", required=True), entry.str("value", required=True)
        assert kind is not None and value is not None
        problem = tax_id_problem(kind, value)
        if problem:
            raise invalid_request(problem, param=f"{param}[{i}][value]", code="tax_id_invalid")
        out.append({"type": kind, "value": value.replace(" ", "").upper()})
    return out


def calculate(sb: Any, *, currency: str, lines: list[dict[str, Any]], address: dict[str, Any],
              tax_ids: list[dict[str, str]]) -> tuple[list[dict[str, Any]], list[Obj]]:
    """Tax per line (``amount_tax`` set on each) and the breakdown, for a buyer at ``address``."""
    seller = head_office_country(sb)
    country = str(address.get("country") or "").upper()
    rate = rate_for(country, address.get("state"))
    reason = "standard_rated"
    if rate is None:
        reason = "not_collecting"
    elif reverse_charge(seller, country, tax_ids):
        reason = "reverse_charge"
    breakdown: dict[bool, Obj] = {}
    for line in lines:
        inclusive = line.get("tax_behavior") == "inclusive"
        tax = tax_of(line["amount"], rate.percentage, inclusive=inclusive) if rate and reason == "standard_rated" \
            else 0
        line["amount_tax"] = tax
        entry = breakdown.setdefault(inclusive, {
            "amount": 0, "inclusive": inclusive, "taxability_reason": reason, "taxable_amount": 0,
            "tax_rate_details": {
                "country": country or None, "flat_amount": None,
                "percentage_decimal": str(rate.percentage if rate and reason == "standard_rated" else Decimal(0)),
                "rate_type": "percentage", "state": rate.state if rate else None,
                "tax_type": rate.tax_type if rate else None}})
        entry["amount"] += tax
        entry["taxable_amount"] += line["amount"] - tax if inclusive else line["amount"]
    return lines, list(breakdown.values())


def automatic_tax_rate(sb: Any, address: dict[str, Any], rate: Any, percentage: Decimal, inclusive: bool) -> Obj:
    """The tax rate object automatic tax names in a breakdown or an invoice's taxes (one per place, percentage
    and behaviour, made once)."""
    key = f"checkout_tax_rate:{address['country']}:{address.get('state')}:{percentage}:{inclusive}"
    found = sb.store.kv.get(key)
    if found is not None and sb.store.get(found, "tax_rate") is not None:
        return sb.store.objects[found]
    kind = rate.tax_type if rate is not None else None
    obj: Obj = {
        "id": new_id("txr", 24), "object": "tax_rate", "active": True, "country": address["country"],
        "created": sb.clock.now_int(), "description": None,
        "display_name": {"vat": "VAT", "gst": "GST", "hst": "HST", "sales_tax": "Sales tax"}.get(kind or "", "Tax"),
        "effective_percentage": float(percentage), "flat_amount": None, "inclusive": inclusive,
        "jurisdiction": address["country"] + (f" - {rate.state}" if rate is not None and rate.state else ""),
        "jurisdiction_level": "state" if rate is not None and rate.state else "country", "livemode": False,
        "metadata": {}, "percentage": float(percentage), "rate_type": "percentage",
        "state": rate.state if rate is not None else None, "tax_type": kind,
    }
    sb.store.add(obj)
    sb.store.set_kv(key, obj["id"])
    return obj


def _address(p: Params) -> dict[str, Any]:
    address = p.dict("address", required=True)
    assert address is not None
    address.only(*ADDRESS_FIELDS)
    out = {k: address.optional_str(k) for k in ADDRESS_FIELDS}
    if not out["country"] or len(out["country"]) != 2:
        raise invalid_request("A two-letter country is required in the address.",
                              param="customer_details[address][country]", code="customer_tax_location_invalid")
    out["country"] = out["country"].upper()
    return out


@route("POST", "/v1/tax/calculations", params=("currency", "line_items", "customer_details", "customer",
                                                "customer_account", "ship_from_details", "shipping_cost",
                                                "tax_date", "expand"))
def create(sb: Any, p: Params) -> Obj:
    currency = (p.str("currency", required=True) or "").lower()
    customer_id, address, tax_ids, source = _location(sb, p)
    lines = _lines(p)
    lines, breakdown = calculate(sb, currency=currency, lines=lines, address=address, tax_ids=tax_ids)
    exclusive = sum(l["amount_tax"] for l in lines if l["tax_behavior"] == "exclusive")
    inclusive = sum(l["amount_tax"] for l in lines if l["tax_behavior"] == "inclusive")
    now = sb.clock.now_int()
    calc_id = new_id("taxcalc", 24)
    calc: Obj = {
        "id": calc_id, "object": "tax.calculation", "amount_total": sum(l["amount"] for l in lines) + exclusive,
        "currency": currency, "customer": customer_id,
        "customer_details": {"address": address, "address_source": source, "ip_address": None,
                             "tax_ids": [{"type": t["type"], "value": t["value"]} for t in tax_ids],
                             "taxability_override": "none"},
        "expires_at": now + EXPIRES_SECONDS,
        "line_items": {"object": "list", "data": lines, "has_more": False,
                       "url": f"/v1/tax/calculations/{calc_id}/line_items"},
        "livemode": False, "ship_from_details": None, "shipping_cost": None, "tax_amount_exclusive": exclusive,
        "tax_amount_inclusive": inclusive, "tax_breakdown": breakdown, "tax_date": p.int("tax_date") or now,
    }
    sb.store.add(calc)
    return calc


def _location(sb: Any, p: Params) -> tuple[str | None, Any, list[Obj], str]:
    """The customer (if named), the address taxed, the tax IDs and the address's source: from
    ``customer_details``, else from the customer's own address."""
    details = p.dict("customer_details")
    customer_id = p.optional_str("customer")
    if details is None and customer_id is None:
        raise invalid_request("Pass customer_details or customer.", param="customer_details")
    if details is not None:
        details.only("address", "address_source", "ip_address", "tax_ids", "taxability_override")
        address, tax_ids = _address(details), checked_tax_ids(details.dict_list("tax_ids"), "customer_details[tax_ids]")
        return customer_id, address, tax_ids, details.str("address_source", "billing", choices=("billing", "shipping"))
    customer = sb.store.get(customer_id or "", "customer")
    if customer is None:
        raise no_such("customer", customer_id or "", "customer")
    if not (customer.get("address") or {}).get("country"):
        raise invalid_request("The customer has no address to calculate tax from.", param="customer",
                              code="customer_tax_location_invalid")
    return customer_id, customer["address"], [], "billing"


def _lines(p: Params) -> list[Obj]:
    lines = []
    for i, item in enumerate(p.dict_list("line_items", required=True)):
        item.only("amount", "reference", "quantity", "tax_behavior", "tax_code", "product", "metadata")
        lines.append({"id": new_id("tax_li", 14), "object": "tax.calculation_line_item",
                      "amount": item.int("amount", required=True, minimum=0), "livemode": False, "metadata": None,
                      "performance_location": None,
                      "product": item.optional_str("product"), "quantity": item.int("quantity", 1, minimum=1),
                      "reference": item.optional_str("reference") or f"line {i}",
                      "tax_behavior": item.str("tax_behavior", "exclusive", choices=("exclusive", "inclusive")),
                      "tax_code": item.optional_str("tax_code") or "txcd_10000000"})
    return lines


def _get(sb: Any, calc_id: str) -> Obj:
    calc = sb.store.get(calc_id, "tax.calculation")
    if calc is None:
        raise no_such("tax.calculation", calc_id, "calculation")
    return calc


@route("GET", "/v1/tax/calculations/{calc_id}")
def retrieve(sb: Any, p: Params, calc_id: str) -> Obj:
    return _get(sb, calc_id)


@route("GET", "/v1/tax/calculations/{calc_id}/line_items", params=("limit", "starting_after", "ending_before"))
def line_items(sb: Any, p: Params, calc_id: str) -> Obj:
    return _get(sb, calc_id)["line_items"]


def tax_id_verification(value: str) -> Obj:
    """A tax ID's ``verification`` as Stripe's test mode reports it."""
    return {"status": "verified" if verified(value) else "unverified", "verified_address": None,
            "verified_name": None}
