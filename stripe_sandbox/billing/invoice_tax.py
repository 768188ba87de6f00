"""Automatic tax on subscriptions and invoices (``automatic_tax[enabled]=true``), from the sandbox's table
(``tax_table``), as Stripe Tax computes it for Billing.

Enabling it needs Stripe Tax active (a head office in ``/v1/tax/settings``: else ``stripe_tax_inactive``) and a
customer whose address has a country (else ``customer_tax_location_invalid``, Stripe's wording). Each invoice
of such a subscription (first, renewal, proration, preview) is taxed when its totals are computed: every line,
after its discounts, at the rate where the customer is, per its price's ``tax_behavior`` (``unspecified`` takes
the tax settings' default, else exclusive): an exclusive tax is added on top, an inclusive one carved out of the
amount. The customer's verified EU VAT ID across an EU border, or ``tax_exempt=reverse``, gives the reverse
charge (no tax); ``tax_exempt=exempt`` gives ``customer_exempt``; a place the table does not collect in,
``not_collecting``. Lines carry ``taxes``, the invoice ``total_taxes`` (the API version's fields)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import invalid_request
from ..params import Params
from ..resources.customer_tax_ids import tax_ids_of
from ..resources.tax_calculations import automatic_tax_rate, default_tax_behavior, head_office_country, tax_active
from ..store import Obj
from .tax_table import rate_for, reverse_charge, tax_of

LOCATION_INVALID = ("The customer's location isn't recognized. Set a valid customer address in order to "
                    "automatically calculate tax.")
OFF: Obj = {"disabled_reason": None, "enabled": False, "liability": None}


def requested(sb: Any, p: Params, customer: Obj) -> Obj | None:
    """The subscription's ``automatic_tax`` from the request (None when the request does not name it), checked
    against what Stripe requires of the account and the customer."""
    tax = p.dict("automatic_tax")
    if tax is None:
        return None
    tax.only("enabled", "liability")
    if not tax.bool("enabled", False):
        return dict(OFF)
    liability = tax.dict("liability")
    if liability is not None and liability.only("type", "account").str("type", choices=("account", "self")) \
            == "account":
        raise invalid_request("The sandbox has no connected accounts: use automatic_tax[liability][type]=self.",
                              param="automatic_tax[liability][type]")
    head_office_country(sb, param="automatic_tax[enabled]")
    if not located(customer):
        raise invalid_request(LOCATION_INVALID, param="customer",
                              code="customer_tax_location_invalid")
    return {"disabled_reason": None, "enabled": True, "liability": {"type": "self"}}


def located(customer: Obj | None) -> bool:
    return bool(((customer or {}).get("address") or {}).get("country"))


def for_invoice(setting: Obj | None) -> Obj:
    """An invoice's ``automatic_tax`` from its subscription's (or the request's) setting."""
    if not (setting or {}).get("enabled"):
        return {"disabled_reason": None, "enabled": False, "liability": None, "provider": None, "status": None}
    return {"disabled_reason": None, "enabled": True, "liability": {"type": "self"}, "provider": "stripe",
            "status": "requires_location_inputs"}


def _behavior(sb: Any, line: Obj) -> str:
    details = (line.get("pricing") or {}).get("price_details") or {}
    price = sb.store.get(details.get("price") or "", "price") or {}
    behavior = price.get("tax_behavior") or "unspecified"
    if behavior == "unspecified":
        return default_tax_behavior(sb)
    return "inclusive" if behavior == "inclusive" else "exclusive"


def _reason(sb: Any, customer: Obj, address: Obj, rate: Any) -> str:
    exempt = customer.get("tax_exempt") or "none"
    if exempt == "exempt":
        return "customer_exempt"
    if rate is None:
        return "not_collecting"
    tax_ids = [{"type": t["type"], "value": t["value"]} for t in tax_ids_of(sb, customer["id"])
               if t["verification"]["status"] == "verified"]
    if exempt == "reverse" or reverse_charge(head_office_country(sb), address["country"], tax_ids):
        return "reverse_charge"
    return "standard_rated"


def apply(sb: Any, invoice: Obj) -> None:
    """Tax a draft's lines and totals (after ``refresh_totals`` set the untaxed ones), when it has automatic
    tax on; without a usable location, nothing is added and the status stays ``requires_location_inputs``."""
    invoice["total_taxes"] = []
    for line in invoice["lines"]["data"]:
        line["taxes"] = []
    if not invoice["automatic_tax"]["enabled"]:
        return
    customer = sb.store.get(invoice["customer"], "customer")
    if customer is None or not located(customer):
        invoice["automatic_tax"]["status"] = "requires_location_inputs"
        return
    if not tax_active(sb):
        invoice["automatic_tax"]["status"] = "failed"
        return
    address = customer["address"]
    invoice["customer_address"] = dict(address)
    invoice["customer_tax_exempt"] = customer.get("tax_exempt") or "none"
    invoice["customer_tax_ids"] = [{"type": t["type"], "value": t["value"]} for t in tax_ids_of(sb, customer["id"])]
    rate = rate_for(str(address["country"]), address.get("state"))
    reason = _reason(sb, customer, address, rate)
    percentage = rate.percentage if rate is not None and reason == "standard_rated" else Decimal(0)
    for line in invoice["lines"]["data"]:
        line["taxes"] = [_line_tax(sb, line, address, rate, percentage, reason)]
    _total(invoice)


def _line_tax(sb: Any, line: Obj, address: Obj, rate: Any, percentage: Decimal, reason: str) -> Obj:
    behavior = _behavior(sb, line)
    inclusive = behavior == "inclusive"
    amount = line["amount"] - sum(d["amount"] for d in line["discount_amounts"])
    tax = tax_of(amount, percentage, inclusive=inclusive) if percentage else 0
    tax_rate = automatic_tax_rate(sb, address, rate, percentage, inclusive)
    return {"amount": tax, "tax_behavior": behavior, "tax_rate_details": {"tax_rate": tax_rate["id"]},
            "taxability_reason": reason, "taxable_amount": amount - tax if inclusive else amount,
            "type": "tax_rate_details"}


def _total(invoice: Obj) -> None:
    """``total_taxes`` (one entry per tax rate and behaviour) and the totals with the tax in them."""
    merged: dict[tuple[str, str], Obj] = {}
    for line in invoice["lines"]["data"]:
        for tax in line["taxes"]:
            key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"])
            entry = merged.setdefault(key, {**tax, "amount": 0, "taxable_amount": 0,
                                            "tax_rate_details": dict(tax["tax_rate_details"])})
            entry["amount"] += tax["amount"]
            entry["taxable_amount"] += tax["taxable_amount"]
    invoice["total_taxes"] = list(merged.values())
    exclusive = sum(t["amount"] for t in merged.values() if t["tax_behavior"] == "exclusive")
    inclusive = sum(t["amount"] for t in merged.values() if t["tax_behavior"] == "inclusive")
    invoice["subtotal_excluding_tax"] = invoice["subtotal"] - inclusive
    invoice["total_excluding_tax"] = invoice["total"] - inclusive
    invoice["total"] += exclusive
    invoice["amount_due"] = max(0, invoice["total"] + invoice["starting_balance"])
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    invoice["automatic_tax"]["status"] = "complete"
