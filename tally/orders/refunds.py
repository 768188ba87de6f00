"""Refunds of pack orders: ``charge.refunded`` claws back the refunded share of the pack, once per Stripe refund."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..ledger import credits, references
from ..receipts import service as receipts
from ..stripe_gateway import StripeGateway, object_id, stripe_call
from .events import known_order, on_payment_intent, order_id_from
from .models import Order
from .repository import OrderNotFoundYet, lock_order


async def on_charge_refunded(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                             charge_id: str) -> Order | None:
    """``charge.refunded``: claw back the refunded share of the pack, once per Stripe refund.

    Refunds are cumulative: refund k takes back ``floor(total_coins × refunded_through_k / amount)`` minus
    what earlier refunds took, so partial refunds add up to exactly the whole pack on a full refund. Each
    refund is a ledger transaction with reference ``refund:{re_id}``, written under the order row lock;
    the same or a later ``charge.refunded`` finds it and writes nothing. A refund of coins already spent
    may take the wallet below zero — see ``tally.ledger.credits``."""
    async with stripe_call("retrieving the charge"):
        charge = await client.retrieve_charge(charge_id)
    payment_intent_id = object_id(charge.get("payment_intent"))
    order = None
    if payment_intent_id:
        order = await session.scalar(select(Order).where(Order.stripe_payment_intent_id == payment_intent_id))
    if order is None:
        what = f"charge {charge_id}"
        order_id = order_id_from(charge.get("metadata"), what)
        if order_id is None and payment_intent_id:
            async with stripe_call("retrieving the payment intent"):
                pi = await client.retrieve_payment_intent(payment_intent_id)
            order_id = order_id_from(pi.get("metadata"), what)
        if order_id is None or not await known_order(session, order_id, charge.get("created"), what):
            return None
        order = await session.get(Order, order_id)
        assert order is not None
    if order.status not in ("paid", "refunded"):
        if not payment_intent_id:
            raise OrderNotFoundYet(f"charge {charge_id} has no payment intent")
        # The refund's event overtook the payment's: fulfil first, so there is something to claw back.
        await on_payment_intent(session, client, settings=settings, payment_intent_id=payment_intent_id or "")
    async with stripe_call("listing refunds"):
        listed = await client.list_refunds(charge_id)
    refunds = sorted(listed, key=lambda r: (r.get("created") or 0, r["id"]))
    order = await apply_refunds(session, order_id=order.id, refunds=refunds)
    await receipts.refunds_recorded(session, settings, order=order, refunds=refunds)
    return order


async def apply_refunds(session: AsyncSession, *, order_id: str, refunds: list[dict[str, Any]]) -> Order:
    """Record each succeeded (or pending) refund once, in creation order, against the locked order."""
    order = await lock_order(session, order_id)
    if order is None:
        raise OrderNotFoundYet(order_id)
    if order.status not in ("paid", "refunded"):
        raise OrderNotFoundYet(f"order {order_id} is not paid yet; its refund waits")
    live = [r for r in refunds if r.get("status") in ("succeeded", "pending")]
    done = await credits.refunds_recorded(session, [r["id"] for r in live])
    # Refunds already recorded count first, whatever their position in Stripe's list; the new ones follow
    # in creation order. Each new refund takes the cumulative target minus what was already taken.
    refunded = min(order.amount, sum(int(r["amount"]) for r in live if r["id"] in done))
    for refund in live:
        if refund["id"] in done:
            continue
        refunded = min(order.amount, refunded + int(refund["amount"]))
        target = order.total_coins * refunded // order.amount
        coins = max(0, target - order.coins_clawed_back)
        if coins:  # a refund too small for a whole coin writes nothing; the next one's target includes it
            details = {"amount": refund["amount"], "currency": refund.get("currency")}
            await credits.reverse_refund(session, user_id=order.user_id, refund_id=refund["id"], credits=coins,
                                         reversed_reference=references.order_purchase(order.id), order_id=order.id,
                                         details=details)
        order.coins_clawed_back += coins
        order.amount_refunded = refunded
    if order.amount_refunded >= order.amount:
        order.status = "refunded"
    await session.flush()
    return order
