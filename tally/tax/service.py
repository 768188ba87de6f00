"""Stripe Tax settings as Tally needs them."""

from __future__ import annotations

import stripe

from ..stripe_gateway import stripe_call, update_key


async def ensure_sandbox_tax_settings(client: stripe.StripeClient, country: str) -> bool:
    """Activate Stripe Tax with a head office in ``country`` unless it is active already (an operator's own
    head office is kept). Returns True when it changed something."""
    async with stripe_call("reading the tax settings"):
        current = (await client.v1.tax.settings.retrieve_async()).to_dict()
    if current.get("status") == "active":
        return False
    params = {"head_office": {"address": {"country": country.upper()}}, "defaults": {"tax_behavior": "exclusive"}}
    async with stripe_call("activating Stripe Tax"):
        await client.v1.tax.settings.update_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": update_key("tax_settings", "account", params)})
    return True
