"""The tax Stripe computed on a paid Checkout Session (``automatic_tax``): the amount, each rate with its
jurisdiction, whether it was inside the price (inclusive) or added to it, and the buyer's address and tax IDs;
a reverse charge when Stripe exempted a business buyer (``customer_details.tax_exempt = reverse``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..stripe_gateway import StripeGateway, stripe_call

ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "state", "country")


@dataclass(frozen=True)
class AppliedTax:
    amount: int  # all tax in the amount charged (minor units)
    exclusive: int  # the part added on top of the price
    lines: list[dict[str, Any]] = field(default_factory=list)  # one per rate: label, percentage, amounts, place
    address: dict[str, Any] | None = None
    tax_ids: list[dict[str, str]] = field(default_factory=list)
    reverse_charge: bool = False


def _line(tax: dict[str, Any]) -> dict[str, Any]:
    rate = tax.get("rate") or {}
    percentage = rate.get("percentage") or 0
    return {"label": f"{rate.get('display_name') or 'Tax'} {percentage:g} %", "percentage": str(percentage),
            "country": rate.get("country"), "state": rate.get("state"), "jurisdiction": rate.get("jurisdiction"),
            "tax_type": rate.get("tax_type"), "inclusive": bool(rate.get("inclusive")),
            "amount": int(tax.get("amount") or 0), "taxable_amount": int(tax.get("taxable_amount") or 0),
            "reason": tax.get("taxability_reason")}


async def tax_of(client: StripeGateway, checkout: dict[str, Any]) -> AppliedTax | None:
    """The session's tax, or None when Stripe computed none for it (automatic tax off)."""
    if not (checkout.get("automatic_tax") or {}).get("enabled"):
        return None
    totals = await _totals_with_breakdown(client, checkout)
    lines = [_line(t) for t in (totals.get("breakdown") or {}).get("taxes") or []]
    exclusive = sum(line["amount"] for line in lines if not line["inclusive"])
    details = checkout.get("customer_details") or {}
    return AppliedTax(
        amount=int(totals.get("amount_tax") or 0), exclusive=exclusive, lines=lines, address=_address(details),
        tax_ids=[{"type": t.get("type"), "value": t.get("value")} for t in details.get("tax_ids") or []],
        reverse_charge=_reverse_charge(details, lines))


async def _totals_with_breakdown(client: StripeGateway, checkout: dict[str, Any]) -> dict[str, Any]:
    totals = checkout.get("total_details") or {}
    if "breakdown" not in totals:  # an includable field: ask for it
        async with stripe_call("retrieving the tax breakdown"):
            expanded = await client.retrieve_checkout_session(checkout["id"], expand=["total_details.breakdown"])
        totals = expanded.get("total_details") or {}
    return totals


def _address(details: dict[str, Any]) -> dict[str, Any] | None:
    address = details.get("address") or None
    return {k: address.get(k) for k in ADDRESS_FIELDS} if address else None


def _reverse_charge(details: dict[str, Any], lines: list[dict[str, Any]]) -> bool:
    """Stripe exempted a business buyer, or a rate's taxability is a reverse charge."""
    return details.get("tax_exempt") == "reverse" or any(line["reason"] == "reverse_charge" for line in lines)
