"""Reading an order: to its owner only; a pending one is checked against Stripe first (and fulfilled on the spot
if paid), so a user back from Checkout sees the credits before the webhook is processed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.service import Principal
from ..config import Settings
from ..errors import Forbidden, NotFound
from ..invoices.models import Invoice
from ..invoices.service import invoice_for_order
from ..ledger import service as ledger
from ..stripe_gateway import StripeGateway
from .models import Order
from .repository import find_order
from .state import apply_payment_intent_state, apply_session_state, retrieve_checkout_session, retrieve_payment_intent


@dataclass(frozen=True)
class OrderStatus:
    order: Order
    coins_added: int
    balance: int
    invoice: Invoice | None


async def get_order_status(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                           principal: Principal, order_or_session_id: str) -> OrderStatus:
    """The order, to its owner only (403 for another user, 404 when unknown). A pending order is checked
    against Stripe first and fulfilled on the spot if paid, so a user back from Checkout sees the
    credits even before the webhook is processed."""
    order = await find_order(session, order_or_session_id)
    if order is None:
        raise NotFound(f"No such order: {order_or_session_id!r}.", param="order_id")
    if order.user_id != principal.user_id:
        raise Forbidden("This order belongs to another user.", param="order_id")
    if order.status in ("pending", "failed") and order.stripe_checkout_session_id:
        checkout = await retrieve_checkout_session(client, order.stripe_checkout_session_id)
        await apply_session_state(session, client, settings=settings, order_id=order.id, checkout=checkout)
        await session.refresh(order)
    elif order.status in ("pending", "failed") and order.kind == "payment_intent" and order.stripe_payment_intent_id:
        pi = await retrieve_payment_intent(client, order.stripe_payment_intent_id)
        await apply_payment_intent_state(session, settings=settings, order_id=order.id, pi=pi)
        await session.refresh(order)
    coins_added = order.total_coins if order.status in ("paid", "refunded") else 0
    return OrderStatus(order, coins_added, await ledger.get_balance(session, order.user_id),
                       await invoice_for_order(session, order.id))
