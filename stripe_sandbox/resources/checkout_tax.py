"""Automatic tax in Checkout (``automatic_tax[enabled]=true``, payment and subscription mode): the hosted page
asks for the billing address (and a tax ID with ``tax_id_collection``), the tax comes from the sandbox's table
(``tax_calculations.calculate``), and the session's totals carry it: each line's ``amount_tax``,
``total_details.amount_tax`` and its ``breakdown.taxes``, an exclusive tax added to ``amount_total``. In
subscription mode the address and tax ID go on the customer and the subscription has automatic tax, so its
invoices are taxed the same way (``billing.invoice_tax``).

Created with a customer, the session needs an address to tax: the customer's, or the one typed on the page
with ``customer_update[address]=auto`` (which then saves it on the customer), as Stripe requires."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..billing.invoice_tax import located
from ..billing.tax_table import rate_for, reverse_charge
from ..errors import invalid_request
from ..params import Params
from ..store import Obj
from .checkout_records import extras
from .customer_tax_ids import add_tax_id, tax_ids_of
from .customers import update as update_customer
from .tax import ADDRESS_FIELDS, _settings
from .tax_calculations import automatic_tax_rate, calculate, checked_tax_ids, head_office_country

LOCATION_REQUIRED = (
    "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid address to the "
    "Customer or set either `customer_update[address]` to 'auto' or `customer_update[shipping]` to 'auto' to save "
    "the address entered in Checkout to the Customer.")


def automatic_tax(sb: Any, p: Params, mode: str, customer: Obj | None) -> Obj:
    """The session's ``automatic_tax``, checked against what Stripe requires."""
    tax = p.dict("automatic_tax")
    if tax is None or not tax.only("enabled", "liability").bool("enabled"):
        return {"enabled": False, "liability": None, "provider": None, "status": None}
    if mode == "setup":
        raise invalid_request("automatic_tax cannot be used in `setup` mode.", param="automatic_tax[enabled]")
    head_office_country(sb, param="automatic_tax[enabled]")  # Stripe Tax must be active
    update = p.dict("customer_update")
    wants_address = update is not None and update.only("address", "name", "shipping").str("address") == "auto"
    if customer is not None and not (customer.get("address") or {}).get("country") and not wants_address:
        raise invalid_request(LOCATION_REQUIRED, param="customer_update[address]", code="customer_tax_location_invalid")
    return {"enabled": True, "liability": {"type": "self"}, "provider": "stripe",
            "status": "requires_location_inputs"}


def enabled(session: Obj) -> bool:
    return bool((session.get("automatic_tax") or {}).get("enabled"))


def _behavior(sb: Any, item: Obj) -> str:
    price = sb.store.get(item["price"], "price") if isinstance(item["price"], str) else item["price"]
    behavior = (price or {}).get("tax_behavior") or "unspecified"
    if behavior == "unspecified":
        behavior = _settings(sb)["defaults"].get("tax_behavior") or "exclusive"
    return "inclusive" if behavior == "inclusive" else "exclusive"


def locate(sb: Any, session: Obj, address: dict[str, Any], tax_ids: list[Params]) -> bool:
    """Tax the session for a buyer at ``address``; True when its total changed. Tax IDs are checked for format
    (``tax_id_invalid``)."""
    ids = checked_tax_ids(tax_ids, "tax_ids")
    ex = extras(sb, session)
    ex["tax_location"] = {"address": address, "tax_ids": ids}
    sb.store.save(ex)
    before = session["amount_total"]
    refresh(sb, session)
    sb.store.save(session)
    return session["amount_total"] != before


def refresh(sb: Any, session: Obj) -> None:
    """Apply the known location's tax to the current totals (called after discounts change them too)."""
    location = extras(sb, session).get("tax_location")
    if not enabled(session) or location is None:
        return
    items = extras(sb, session)["line_items"]
    lines = [{"amount": item["amount_subtotal"] - item["amount_discount"], "tax_behavior": _behavior(sb, item)}
             for item in items]
    calculate(sb, currency=session["currency"], lines=lines, address=location["address"],
              tax_ids=location["tax_ids"])
    for item, line in zip(items, lines):
        item["amount_tax"] = line["amount_tax"]
        item["amount_total"] = line["amount"] + (line["amount_tax"] if line["tax_behavior"] == "exclusive" else 0)
    session["amount_total"] = sum(item["amount_total"] for item in items)
    session["total_details"]["amount_tax"] = sum(line["amount_tax"] for line in lines)
    session["total_details"]["breakdown"] = {"discounts": [], "taxes": _taxes(sb, session, lines, location)}
    session["automatic_tax"]["status"] = "complete"


def _taxes(sb: Any, session: Obj, lines: list[dict[str, Any]], location: Obj) -> list[Obj]:
    address = location["address"]
    rate = rate_for(address["country"], address.get("state"))
    reverse = reverse_charge(head_office_country(sb), address["country"], location["tax_ids"])
    out = []
    for inclusive in (False, True):
        group = [line for line in lines if (line["tax_behavior"] == "inclusive") == inclusive]
        if not group:
            continue
        tax = sum(line["amount_tax"] for line in group)
        taxable = sum(line["amount"] - (line["amount_tax"] if inclusive else 0) for line in group)
        reason = "not_collecting" if rate is None else "reverse_charge" if reverse else "standard_rated"
        percentage = rate.percentage if rate is not None and not reverse else Decimal(0)
        out.append({"amount": tax, "rate": automatic_tax_rate(sb, address, rate, percentage, inclusive),
                    "taxability_reason": reason, "taxable_amount": taxable})
    return out


def located_customer(sb: Any, session: Obj, customer: Obj) -> bool:
    """Subscription mode, before subscribing: the subscription Checkout creates taxes its invoices from its
    customer, so the address typed goes on a customer Checkout created, or with ``customer_update[address]=auto``
    (a customer with an address of its own keeps it), and the tax ID typed is added to the customer's. True
    when the subscription is to have automatic tax."""
    location = extras(sb, session).get("tax_location")
    if not enabled(session) or location is None:
        return False
    creates = session["customer"] is None
    if creates or extras(sb, session).get("customer_update_address") or not located(customer):
        address = {k: location["address"][k] for k in ADDRESS_FIELDS if location["address"].get(k) is not None}
        update_customer(sb, Params({"address": address}), customer["id"])
    known = {(t["type"], t["value"]) for t in tax_ids_of(sb, customer["id"])}
    for entry in location["tax_ids"]:
        if (entry["type"], entry["value"]) not in known:
            add_tax_id(sb, customer, Params(dict(entry)), "tax_id")
    return True


def details_at_completion(sb: Any, session: Obj) -> Obj:
    """``customer_details`` address, tax IDs and exemption from the taxed location (and save the address on the
    customer with ``customer_update[address]=auto``)."""
    location = extras(sb, session).get("tax_location")
    if not enabled(session) or location is None:
        return {}
    address = {k: location["address"].get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
    reverse = reverse_charge(head_office_country(sb), address["country"], location["tax_ids"])
    if session["customer"] and extras(sb, session).get("customer_update_address"):
        customer = sb.store.get(session["customer"], "customer")
        if customer is not None:
            customer["address"] = address
            sb.store.save(customer)
    return {"address": address, "tax_exempt": "reverse" if reverse else "none",
            "tax_ids": [{"type": t["type"], "value": t["value"]} for t in location["tax_ids"]]}
