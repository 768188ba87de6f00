"""Stripe Tax settings as Tally needs them."""

from __future__ import annotations

from ..stripe_gateway import StripeGateway, stripe_call, update_key


async def ensure_sandbox_tax_settings(client: StripeGateway, country: str) -> bool:
    """Activate Stripe Tax with a head office in ``country`` unless it is active already (an operator's own
    head office is kept). Returns True when it changed something."""
    async with stripe_call("reading the tax settings"):
        current = await client.retrieve_tax_settings()
    if current.get("status") == "active":
        return False
    params = {"head_office": {"address": {"country": country.upper()}}, "defaults": {"tax_behavior": "exclusive"}}
    async with stripe_call("activating Stripe Tax"):
        await client.update_tax_settings(params, idempotency_key=update_key("tax_settings", "account", params))
    return True
