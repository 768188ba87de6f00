"""What a promotion code took off a paid Checkout Session: read from the session as Stripe has it when the
order is fulfilled (``total_details.amount_discount`` and its ``discounts``), never from the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..stripe_gateway import StripeGateway, stripe_call


@dataclass(frozen=True)
class AppliedDiscount:
    amount: int  # minor units taken off the catalog's price
    promotion_code: str | None  # the code the buyer typed (None: a coupon applied without a code)
    stripe_promotion_code_id: str | None


async def discount_of(client: StripeGateway, checkout: dict[str, Any]) -> AppliedDiscount | None:
    """The session's discount, or None when it has none."""
    amount = int((checkout.get("total_details") or {}).get("amount_discount") or 0)
    if amount <= 0:
        return None
    promo = next((d.get("promotion_code") for d in checkout.get("discounts") or [] if d.get("promotion_code")),
                 None)
    if isinstance(promo, dict):
        return AppliedDiscount(amount, promo.get("code"), promo.get("id"))
    if not promo:
        return AppliedDiscount(amount, None, None)
    async with stripe_call("retrieving the promotion code"):
        found = await client.retrieve_promotion_code(promo)
    return AppliedDiscount(amount, found.get("code"), promo)


def discount_line(discount: AppliedDiscount, currency: str) -> dict[str, Any]:
    """The invoice line of a discount: a negative amount under the pack's line."""
    label = f"Discount ({discount.promotion_code})" if discount.promotion_code else "Discount"
    return {"description": label, "quantity": 1, "unit_amount": -discount.amount, "amount": -discount.amount,
            "currency": currency, "kind": "discount", "promotion_code": discount.promotion_code}
