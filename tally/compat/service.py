"""What the drop-in routes decide before calling Tally's own services: which catalog pack a legacy body
describes, and whether a client's price reference names a pack (Checkout in payment mode, an order) or a plan
(Checkout in subscription mode). The checkouts themselves are ``tally.orders`` and ``tally.subscriptions``'."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..auth.service import Principal
from ..catalog.service import Catalog, Pack, PriceBook, match_price_reference
from ..config import Settings
from ..errors import InvalidRequest
from ..orders import service as orders
from ..subscriptions import service as subscriptions
from ..subscriptions.plans import PlanBook, PlanPrices, match_plan_price
from ..stripe_gateway import StripeGateway


@dataclass(frozen=True)
class CheckoutStarted:
    session_id: str
    checkout_url: str


def _pack_list(catalog: Catalog) -> str:
    return "; ".join(f"{p.id} ({money.format_amount(p.amount, p.currency)}, {p.coins} coins + {p.bonus} bonus)"
                     for p in catalog.packs.values())


def described_pack(catalog: Catalog, *, price_usd: Decimal, coins: int, bonus: int) -> Pack:
    """The pack whose USD price, coins and bonus are exactly these: the client describes a pack, the price is
    still the catalog's."""
    try:
        amount = money.to_minor(price_usd, "usd")
    except money.CurrencyError:
        amount = -1  # more decimals than cents: matches no pack
    pack = catalog.pack_matching(amount=amount, currency="usd", coins=coins, bonus=bonus)
    if pack is None:
        raise InvalidRequest("Client-chosen prices are refused: price_usd, coins and bonus must match a pack of "
                             f"the catalog exactly. Valid packs: {_pack_list(catalog)}.", param="price_usd")
    return pack


async def checkout_for_price(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                             catalog: Catalog, prices: PriceBook, book: PlanBook, plan_prices: PlanPrices,
                             principal: Principal, price_reference: str, success_url: str | None,
                             cancel_url: str | None, locale: str | None) -> CheckoutStarted:
    """Checkout for the catalog price ``price_reference`` names (a Stripe price id or a lookup key): a pack's,
    or else a plan's recurring price (subscription mode). A price that is neither is refused."""
    pack = await match_price_reference(client, catalog, prices, price_reference)
    if pack is not None:
        started = await orders.create_checkout(
            session, client, settings=settings, catalog=catalog, prices=prices, principal=principal,
            pack_id=pack.id, success_url=success_url, cancel_url=cancel_url, locale=locale)
        return CheckoutStarted(started.session_id, started.checkout_url)
    plan = await match_plan_price(client, book, plan_prices, price_reference)
    if plan is None:
        keys = ", ".join(p.lookup_key for p in catalog.packs.values())
        raise InvalidRequest(f"priceId {price_reference!r} is not in the catalog (client-chosen prices are refused). "
                             f"Use a pack's lookup key or its current Stripe price id ({keys}), or a plan's lookup "
                             "key from GET /v1/plans (plan:<id>:month or plan:<id>:year).", param="priceId")
    subscribed = await subscriptions.start_checkout(
        session, client, settings=settings, book=book, prices=plan_prices, catalog=catalog, principal=principal,
        plan_id=plan[0].id, interval=plan[1], success_url=success_url, cancel_url=cancel_url, locale=locale)
    return CheckoutStarted(subscribed.session_id, subscribed.checkout_url)
