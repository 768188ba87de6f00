"""Promotion codes live in Stripe (a coupon and its customer-facing code); Tally creates, lists and deactivates
them, and counts what each one did from its own orders. Stripe's Checkout enforces every limit (expiry,
redemptions, first order, products) when the buyer types the code; nothing here can be bypassed by a client.

A code restricted to plans or packs becomes a coupon with ``applies_to.products``: Tally's pack and plan
products (``tally_pack_<id>``, ``tally_plan_<id>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..catalog.service import Catalog, sync_pack
from ..errors import InvalidRequest, NotFound
from ..orders.models import Order
from ..stripe_gateway import InvalidRequestError, StripeGateway, stripe_call, update_key
from ..subscriptions.plans import PlanBook, sync_plan_price

DURATIONS = ("once", "repeating", "forever")
CODE_PATTERN = re.compile(r"[A-Za-z0-9]{3,64}")


@dataclass(frozen=True)
class PromotionSpec:
    code: str
    duration: str = "once"
    percent_off: Decimal | None = None
    amount_off: int | None = None  # minor units of ``currency``
    currency: str | None = None
    months: int | None = None  # with duration "repeating"
    max_redemptions: int | None = None
    expires: date | None = None  # the last day the code can be used (UTC)
    first_time_only: bool = False
    plans: tuple[str, ...] = ()
    packs: tuple[str, ...] = ()


def validate(spec: PromotionSpec, catalog: Catalog, book: PlanBook, *, today: date) -> None:
    """Refuse a spec Stripe would refuse, or one that names plans or packs Tally does not sell, in plain words."""
    if not CODE_PATTERN.fullmatch(spec.code):
        raise InvalidRequest("A code is 3 to 64 letters and digits, e.g. LAUNCH20.", param="code")
    _validate_discount(spec)
    _validate_duration(spec)
    _validate_limits(spec, today=today)
    _validate_products(spec, catalog, book)


def _validate_discount(spec: PromotionSpec) -> None:
    """One of a percentage or an amount, each within what Stripe takes."""
    if (spec.percent_off is None) == (spec.amount_off is None):
        raise InvalidRequest("Give exactly one of --percent-off or --amount-off.", param="percent_off")
    if spec.percent_off is not None and not Decimal(0) < spec.percent_off <= Decimal(100):
        raise InvalidRequest("--percent-off is more than 0 and at most 100.", param="percent_off")
    if spec.amount_off is not None:
        if not spec.currency:
            raise InvalidRequest("--amount-off needs --currency.", param="currency")
        try:
            money.check_amount(spec.amount_off, spec.currency)
        except money.CurrencyError as exc:
            raise InvalidRequest(f"--amount-off: {exc}.", param="amount_off") from None


def _validate_duration(spec: PromotionSpec) -> None:
    if spec.duration not in DURATIONS:
        raise InvalidRequest(f"--duration is one of {', '.join(DURATIONS)}.", param="duration")
    if (spec.duration == "repeating") != (spec.months is not None):
        raise InvalidRequest("--months goes with --duration repeating, and only with it.", param="months")
    if spec.months is not None and spec.months < 1:
        raise InvalidRequest("--months is at least 1.", param="months")


def _validate_limits(spec: PromotionSpec, *, today: date) -> None:
    if spec.max_redemptions is not None and spec.max_redemptions < 1:
        raise InvalidRequest("--max-redemptions is at least 1.", param="max_redemptions")
    if spec.expires is not None and spec.expires < today:
        raise InvalidRequest("--expires is a day from today on.", param="expires")


def _validate_products(spec: PromotionSpec, catalog: Catalog, book: PlanBook) -> None:
    """Only packs and plans Tally sells."""
    unknown_packs = [p for p in spec.packs if catalog.pack(p) is None]
    if unknown_packs:
        raise InvalidRequest(f"No such pack: {', '.join(unknown_packs)}. Packs: {', '.join(catalog.packs)}.",
                             param="packs")
    unknown_plans = [p for p in spec.plans if book.get(p) is None]
    if unknown_plans:
        raise InvalidRequest(f"No such plan: {', '.join(unknown_plans)}. Plans: {', '.join(book.plans)}.",
                             param="plans")


def _expires_at(day: date) -> int:
    """The code works through ``day`` (UTC): Stripe's ``expires_at`` is the first second after it."""
    return int(datetime.combine(day + timedelta(days=1), time(), UTC).timestamp())


def coupon_params(spec: PromotionSpec, products: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"duration": spec.duration, "name": spec.code,
                              "metadata": {"tally_promotion": spec.code}}
    if spec.percent_off is not None:
        params["percent_off"] = str(spec.percent_off)
    else:
        params["amount_off"], params["currency"] = spec.amount_off, money.normalize(spec.currency or "")
    if spec.months is not None:
        params["duration_in_months"] = spec.months
    if products:
        params["applies_to"] = {"products": products}
    return params


def promotion_code_params(spec: PromotionSpec, coupon_id: str) -> dict[str, Any]:
    params: dict[str, Any] = {"promotion": {"type": "coupon", "coupon": coupon_id}, "code": spec.code,
                              "metadata": {"tally_promotion": spec.code}}
    if spec.max_redemptions is not None:
        params["max_redemptions"] = spec.max_redemptions
    if spec.expires is not None:
        params["expires_at"] = _expires_at(spec.expires)
    if spec.first_time_only:
        params["restrictions"] = {"first_time_transaction": True}
    return params


async def create_promotion(client: StripeGateway, catalog: Catalog, book: PlanBook,
                           spec: PromotionSpec, *, today: date) -> dict[str, Any]:
    """A coupon and its promotion code in Stripe; the same request retried is the same Stripe request."""
    validate(spec, catalog, book, today=today)
    products = [catalog.packs[p].product_id for p in spec.packs] + [book.plans[p].product_id for p in spec.plans]
    coupon_spec = coupon_params(spec, products)
    try:
        await _ensure_products(client, catalog, book, spec)
        async with stripe_call("creating the coupon"):
            coupon = await client.create_coupon(
                coupon_spec, idempotency_key=update_key("promo_coupon", spec.code, coupon_spec))
        code_spec = promotion_code_params(spec, coupon["id"])
        async with stripe_call("creating the promotion code"):
            promo = await client.create_promotion_code(
                code_spec, idempotency_key=update_key("promo_code", spec.code, code_spec))
    except InvalidRequestError as exc:
        raise InvalidRequest(f"Stripe refused it: {exc.user_message or exc}", param=exc.param) from None
    promo["promotion"]["coupon"] = coupon
    return promo


async def _ensure_products(client: StripeGateway, catalog: Catalog, book: PlanBook,
                           spec: PromotionSpec) -> None:
    """The products a restricted coupon names must exist in Stripe: sync those packs and plans first (a
    no-op when they are already there)."""
    for pack_id in spec.packs:
        await sync_pack(client, catalog.packs[pack_id])
    for plan_id in spec.plans:
        plan = book.plans[plan_id]
        for interval in plan.prices:
            await sync_plan_price(client, plan, interval)


async def list_promotions(client: StripeGateway, *, active_only: bool = False) -> list[dict[str, Any]]:
    """Every promotion code in the Stripe account, newest first, each with its coupon."""
    params: dict[str, Any] = {"limit": 100}
    if active_only:
        params["active"] = True
    async with stripe_call("listing promotion codes"):
        codes = await client.list_promotion_codes(params)
        coupons = {c["id"]: c for c in await client.list_coupons()}
    for promo in codes:
        coupon_id = promo["promotion"]["coupon"]
        if isinstance(coupon_id, str):
            promo["promotion"]["coupon"] = coupons.get(coupon_id) or {"id": coupon_id}
    return codes


async def deactivate(client: StripeGateway, code: str) -> dict[str, Any]:
    """Turn the active code ``code`` off (Stripe keeps it, and what it already discounted)."""
    async with stripe_call("finding the promotion code"):
        found = await client.first_promotion_code({"code": code, "active": True})
    if found is None:
        raise NotFound(f"No active promotion code {code!r}.", param="code")
    async with stripe_call("deactivating the promotion code"):
        return await client.update_promotion_code(
            found["id"], {"active": False}, idempotency_key=update_key("promo_code", found["id"], {"active": False}))


# -- what each code did ---------------------------------------------------------------------------------
@dataclass
class Usage:
    orders: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency → charged after the discount
    discount: dict[str, int] = field(default_factory=dict)  # currency → taken off


async def usage_by_code(session: AsyncSession) -> dict[str, Usage]:
    """Paid pack orders per Stripe promotion code id: how many, the money charged and the discount given
    (refunds are not subtracted: this is what the code sold)."""
    rows = await session.execute(
        select(Order.stripe_promotion_code_id, Order.currency, func.count(), func.sum(Order.amount),
               func.sum(Order.amount_discount))
        .where(Order.stripe_promotion_code_id.is_not(None), Order.status.in_(("paid", "refunded")))
        .group_by(Order.stripe_promotion_code_id, Order.currency))
    out: dict[str, Usage] = {}
    for promo_id, currency, count, revenue, discount in rows.all():
        usage = out.setdefault(promo_id, Usage())
        usage.orders += int(count)
        usage.revenue[currency] = int(revenue or 0)
        usage.discount[currency] = int(discount or 0)
    return out


def describe(promo: dict[str, Any]) -> str:
    """``20 % off once``, ``5.00 USD off for 3 months``: the coupon in words."""
    coupon = promo["promotion"]["coupon"] if isinstance(promo["promotion"]["coupon"], dict) else {}
    if coupon.get("percent_off") is not None:
        off = f"{Decimal(str(coupon['percent_off'])).normalize():f} % off"
    elif coupon.get("amount_off") is not None:
        off = f"{money.format_amount(int(coupon['amount_off']), coupon['currency'])} off"
    else:
        return "coupon unknown"
    duration = coupon.get("duration")
    if duration == "repeating":
        return f"{off} for {coupon.get('duration_in_months')} months"
    return f"{off} {'once' if duration == 'once' else 'forever'}"


def status_of(promo: dict[str, Any], now: int) -> str:
    if not promo.get("active"):
        return "inactive"
    if promo.get("expires_at") is not None and now >= promo["expires_at"]:
        return "expired"
    if promo.get("max_redemptions") is not None and promo["times_redeemed"] >= promo["max_redemptions"]:
        return "used up"
    return "active"


def restricted_to(promo: dict[str, Any]) -> list[str]:
    coupon = promo["promotion"]["coupon"] if isinstance(promo["promotion"]["coupon"], dict) else {}
    products = ((coupon.get("applies_to") or {}).get("products")) or []
    return [p.removeprefix("tally_pack_").removeprefix("tally_plan_") + (" (plan)" if p.startswith("tally_plan_")
            else " (pack)" if p.startswith("tally_pack_") else "") for p in products]
