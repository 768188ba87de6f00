"""Checkout: a pending order for one catalog pack and its Stripe Checkout Session, at the catalog's price."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..auth.service import Principal
from ..catalog.service import Catalog, Pack, PriceBook
from ..checkout_locale import checkout_locale
from ..config import Settings
from ..customers.models import User
from ..customers.service import ensure_stripe_customer, ensure_user
from ..errors import InvalidRequest, UpstreamUnavailable
from ..stripe_gateway import StripeGateway, idempotency_key, stripe_call
from .models import Order


@dataclass(frozen=True)
class CheckoutStarted:
    order_id: str
    session_id: str
    checkout_url: str


async def create_checkout(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                          catalog: Catalog, prices: PriceBook, principal: Principal, pack_id: str,
                          success_url: str | None = None, cancel_url: str | None = None,
                          currency: str | None = None, locale: str | None = None) -> CheckoutStarted:
    """A pending order for one catalog pack and its Stripe Checkout Session, in ``currency`` (any currency
    the catalog prices the pack in; default its primary one). The price comes from the catalog only, through
    the pack's Stripe Price in that currency. If Stripe fails, the caller's transaction rolls back and no
    order remains; a retry of the same order id would reuse the same Stripe request through the
    idempotency key."""
    pack = catalog.pack(pack_id)
    if pack is None:
        raise InvalidRequest(f"No such pack: {pack_id!r}. Packs: {', '.join(catalog.packs)}.", param="pack_id")
    code, amount = price_in_currency(pack, currency)
    user = await ensure_user(session, principal)
    customer_id = await ensure_stripe_customer(session, client, user)
    # The order row is written once, with its session id, after Stripe answered: its id (made here) is all the
    # request needs, and a failure before then leaves nothing to roll back.
    language = checkout_locale(locale)
    order = Order(id=str(uuid.uuid4()), user_id=user.id, pack_id=pack.id, pack_name=pack.name, amount=amount,
                  currency=code, coins=pack.coins, bonus=pack.bonus,
                  credits_expire_after_days=pack.expires_after_days, status="pending", locale=language)
    remember_locale(user, language)
    base = settings.public_url.rstrip("/")
    metadata = {"order_id": order.id, "user_id": user.id, "pack_id": pack.id}
    params: dict[str, Any] = {
        "mode": "payment",
        "customer": customer_id,
        "line_items": [{"price": await prices.price_id(client, pack, code), "quantity": 1}],
        "client_reference_id": order.id,
        "metadata": metadata,
        # The PaymentIntent carries the order too, so payment_intent.* and charge.* events find it.
        "payment_intent_data": {"metadata": metadata},
        "success_url": success_url or f"{base}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": cancel_url or f"{base}/checkout/cancel?order_id={order.id}",
    }
    methods = catalog.payment_method_types(code)
    if methods:
        params["payment_method_types"] = methods
    if settings.allow_promotion_codes:
        params["allow_promotion_codes"] = True  # the buyer may type a code; coins stay the pack's
    if language is not None:
        params["locale"] = language
    if settings.tax_mode == "automatic":
        params.update(AUTOMATIC_TAX)
    async with stripe_call("creating checkout"):
        checkout = await client.create_checkout_session(
            params, idempotency_key=idempotency_key("order", order.id, "checkout"))
    if checkout.get("amount_total") != order.amount or checkout.get("currency") != order.currency:
        # The Stripe price no longer matches the catalog (edited in the dashboard?): never sell at a price
        # other than the catalog's. Drop the cached price so the next attempt re-syncs it.
        prices.forget(pack, code)
        raise UpstreamUnavailable("The pack's Stripe price is out of date; it has been re-synced, please retry.")
    order.stripe_checkout_session_id = checkout["id"]
    session.add(order)
    await session.flush()
    return CheckoutStarted(order.id, checkout["id"], checkout["url"])


# Stripe Tax on the session (the production method's recommended Checkout defaults): the billing address and a
# business tax ID are asked for, and saved on the customer, so the tax and the invoice name the right place.
AUTOMATIC_TAX: dict[str, Any] = {
    "automatic_tax": {"enabled": True}, "billing_address_collection": "required",
    "tax_id_collection": {"enabled": True}, "customer_update": {"address": "auto", "name": "auto"},
}


def remember_locale(user: User, language: str | None) -> None:
    """The buyer's language, for emails that follow no order of theirs (renewals)."""
    if language is not None and language != "auto":
        user.locale = language


def price_in_currency(pack: Pack, currency: str | None) -> tuple[str, int]:
    """(currency, amount) the pack sells for in ``currency`` (any case; None: the pack's primary price);
    a currency the catalog does not price the pack in is the caller's mistake, a 400 naming the ones it is."""
    try:
        code = money.normalize(currency) if currency else pack.currency
    except money.CurrencyError as exc:
        raise InvalidRequest(str(exc), param="currency") from None
    amount = pack.amount_in(code)
    if amount is None:
        raise InvalidRequest(f"The {pack.id} pack is not sold in {code.upper()}; it is sold in "
                             f"{', '.join(c.upper() for c in pack.currencies)}.", param="currency")
    return code, amount
