"""Tally's billing portal configuration, so that the portal offers what the account page promises: switch
between the plans' prices, cancel at period end with a reason, update the card, see invoices.

Plan changes in the portal follow the same rules as ``POST /v1/subscription/change``: an upgrade applies now
and is invoiced at once (``always_invoice``, so ``invoice.paid`` grants the prorated credits); a lower amount
or a shorter interval waits for the period end (``schedule_at_period_end``: Stripe puts it in a subscription
schedule, which the mirror reports as the pending change).

The configuration is created once and found again by its metadata (``tally_portal``), never stored: its
``tally_fingerprint`` is a hash of the features Tally wants (the plans' price ids included), so a changed plans
file updates it in place. Created under an idempotency key derived from that hash, so two processes racing
to create it get the same one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cachetools import LRUCache

from ..config import Settings
from ..stripe_gateway import StripeGateway, idempotency_key, stripe_call
from .plans import PlanBook, PlanPrices

MARK = "tally_portal"
CANCELLATION_REASONS = ["too_expensive", "missing_features", "switched_service", "unused", "too_complex",
                        "low_quality", "other"]



class KnownConfigurations(LRUCache[str, str]):
    """Fingerprint → id of Tally's configuration in one Stripe account (owned by its gateway). A fingerprint
    changes only with the plans file, so a few are all a process sees."""

    def __init__(self) -> None:
        super().__init__(maxsize=8)


def plan_prices_for(client: StripeGateway) -> PlanPrices:
    """The plans' price ids in the gateway's Stripe account (one set per gateway: tests run several apps
    against several sandboxes in one process)."""
    return client.owned(PlanPrices)


async def wanted_features(client: StripeGateway, book: PlanBook, prices: PlanPrices) -> dict[str, Any]:
    products = []
    for plan in sorted(book.plans.values(), key=lambda p: p.rank):
        products.append({"product": plan.product_id,
                         "prices": [await prices.price_id(client, plan, interval) for interval in plan.prices]})
    return {
        "subscription_update": {
            "enabled": True, "default_allowed_updates": ["price"], "products": products,
            "proration_behavior": "always_invoice",
            "schedule_at_period_end": {"conditions": [{"type": "decreasing_item_amount"},
                                                      {"type": "shortening_interval"}]}},
        "subscription_cancel": {
            "enabled": True, "mode": "at_period_end", "proration_behavior": "none",
            "cancellation_reason": {"enabled": True, "options": CANCELLATION_REASONS}},
        "payment_method_update": {"enabled": True},
        "invoice_history": {"enabled": True},
        # The email belongs to the Tally account (sign-in); the portal must not change it behind Tally's back.
        "customer_update": {"enabled": False},
    }


def fingerprint(features: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(features, sort_keys=True).encode()).hexdigest()[:32]


async def _find(client: StripeGateway) -> dict[str, Any] | None:
    async with stripe_call("listing billing portal configurations"):
        every = await client.list_portal_configurations()
    mine = [c for c in every if (c.get("metadata") or {}).get(MARK)]
    return max(mine, key=lambda c: int(c.get("created") or 0)) if mine else None


async def configuration_id(client: StripeGateway, settings: Settings, book: PlanBook) -> str:
    """Tally's portal configuration, created or brought up to date on first use (then cached per client)."""
    features = await wanted_features(client, book, plan_prices_for(client))
    mark = fingerprint(features)
    cache = client.owned(KnownConfigurations)
    if mark in cache:
        return cache[mark]
    params: dict[str, Any] = {
        "features": features, "default_return_url": settings.public_url.rstrip("/") + "/account",
        "business_profile": {"headline": f"{settings.seller_name}: manage your plan and billing"},
        "metadata": {MARK: "1", "tally_fingerprint": mark}}
    found = await _find(client)
    async with stripe_call("configuring the billing portal"):
        if found is None:
            config = await client.create_portal_configuration(
                params, idempotency_key=idempotency_key("portal_configuration", mark, "create"))
        elif (found.get("metadata") or {}).get("tally_fingerprint") != mark:
            config = await client.update_portal_configuration(
                found["id"], params,
                idempotency_key=idempotency_key("portal_configuration", f"{found['id']}:{mark}", "update"))
        else:
            cache[mark] = str(found["id"])
            return cache[mark]
    cache[mark] = str(config["id"])
    return cache[mark]
