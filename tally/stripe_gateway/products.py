"""Keeping a Stripe Product that Tally names itself (a credit pack's, a plan's) as the catalog says."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequestError, is_missing
from .gateway import StripeGateway
from .keys import update_key


async def ensure_product(client: StripeGateway, product_id: str, *, name: str, description: str | None,
                         metadata: dict[str, str], create_key: str) -> bool:
    """Create the product when Stripe has none with this id (True), else give it back ``name`` and make it
    active again if someone changed it in the Dashboard (False). The caller wraps it in ``stripe_call``."""
    try:
        product: dict[str, Any] = await client.retrieve_product(product_id)
    except InvalidRequestError as exc:
        if not is_missing(exc):
            raise
        await client.create_product({"id": product_id, "name": name, "metadata": metadata,
                                     **({"description": description} if description else {})},
                                    idempotency_key=create_key)
        return True
    if product.get("name") != name or not product.get("active"):
        wanted = {"name": name, "active": True}
        await client.update_product(product_id, wanted, idempotency_key=update_key("product", product_id, wanted))
    return False
