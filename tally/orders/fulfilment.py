"""Fulfilment: the one place where a payment becomes credits.

``fulfil_paid_order`` writes order → paid, the ledger transaction (unique reference ``order:{id}:purchase``), the
balance and the invoice (unique per order) in the caller's transaction, under the order row's lock. The lock
serialises the doors that reach it (``state``); the unique constraints make a second fulfilment impossible even
if the lock were bypassed. Nothing here commits."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..customers.models import User
from ..invoices.service import issue_invoice
from ..ledger import credits
from ..ledger.posting import Paid
from ..receipts import service as receipts
from .discounts import AppliedDiscount, discount_line
from .models import Order
from .repository import OrderNotFoundYet, lock_order
from .taxes import AppliedTax

log = logging.getLogger("tally.orders")


async def fulfil_paid_order(session: AsyncSession, *, order_id: str, settings: Settings,
                            payment_intent_id: str | None = None, checkout_session_id: str | None = None,
                            paid_amount: int | None = None, paid_currency: str | None = None,
                            customer_name: str | None = None, customer_email: str | None = None,
                            discount: AppliedDiscount | None = None, tax: AppliedTax | None = None) -> Order:
    """Credit a paid order exactly once, in the caller's transaction: order → paid; ledger transaction
    ``order:{id}:purchase`` with coins and bonus entries (each with ``balance_after``); the wallet balance;
    the invoice with the next gap-free number. Call only with state just retrieved from Stripe. A second
    call (another event, the status endpoint) finds the order paid under the row lock and does nothing."""
    order = await lock_order(session, order_id)
    if order is None:
        raise OrderNotFoundYet(order_id)
    if order.status in ("paid", "refunded"):
        return order
    if discount is not None or tax is not None:
        apply_price(order, discount, tax)
    _log_amount_mismatch(order, paid_amount, paid_currency)
    user = await session.get(User, order.user_id)
    assert user is not None
    description = _description(order)
    paid_at = datetime.now(UTC)
    await credits.grant_pack(session, user_id=order.user_id, order_id=order.id, coins=order.coins, bonus=order.bonus,
                             description=description, expires_at=_credits_expire_at(order, paid_at),
                             paid=Paid(order.amount - order.amount_tax, order.currency),
                             details={"payment_intent": payment_intent_id, "pack_id": order.pack_id})
    _mark_paid(order, paid_at, payment_intent_id=payment_intent_id, checkout_session_id=checkout_session_id)
    await session.flush()
    invoice = await issue_invoice(session, order_id=order.id, user_id=order.user_id, amount=order.amount,
                        currency=order.currency, description=description, coins=order.coins, bonus=order.bonus,
                        unit_amount=order.price_before_discount,
                        discount_line=discount_line(discount, order.currency) if discount else None, tax=tax,
                        customer_name=customer_name or user.name or customer_email or user.email,
                        customer_email=customer_email or user.email, seller_name=settings.seller_name)
    await receipts.order_paid(session, settings, order=order, invoice=invoice)
    return order


def _log_amount_mismatch(order: Order, paid_amount: int | None, paid_currency: str | None) -> None:
    if paid_amount is not None and (paid_amount != order.amount or paid_currency != order.currency):
        # Money was taken, so the pack is still granted; the mismatch needs a human, not a silent change.
        log.error("order %s paid %s %s but was created for %s %s", order.id, paid_amount, paid_currency,
                  order.amount, order.currency)


def _description(order: Order) -> str:
    """The pack and its coins, as the ledger and the invoice name them."""
    return f"{order.pack_name} ({order.coins} coins" + (f" + {order.bonus} bonus)" if order.bonus else ")")


def _credits_expire_at(order: Order, paid_at: datetime) -> datetime | None:
    return (paid_at + timedelta(days=order.credits_expire_after_days)
            if order.credits_expire_after_days else None)


def _mark_paid(order: Order, paid_at: datetime, *, payment_intent_id: str | None,
               checkout_session_id: str | None) -> None:
    order.status = "paid"
    order.paid_at = paid_at
    order.failure_message = None
    if payment_intent_id and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = payment_intent_id  # unique: one payment fulfils one order
    if checkout_session_id and not order.stripe_checkout_session_id:
        order.stripe_checkout_session_id = checkout_session_id


def apply_price(order: Order, discount: AppliedDiscount | None, tax: AppliedTax | None) -> None:
    """What the buyer was charged, recorded on the order before it is fulfilled (the coins stay the pack's): the
    price less the promotion code's discount (never more than the price), plus any tax added on top of it."""
    price = order.price_before_discount
    taken = min(discount.amount, price) if discount is not None else 0
    order.amount_subtotal = price
    order.amount_discount = taken
    order.amount = price - taken + (tax.exclusive if tax is not None else 0)
    if discount is not None:
        order.promotion_code = discount.promotion_code
        order.stripe_promotion_code_id = discount.stripe_promotion_code_id
    if tax is not None:
        order.amount_tax = tax.amount
        order.tax_details = {"lines": tax.lines, "address": tax.address, "tax_ids": tax.tax_ids,
                             "reverse_charge": tax.reverse_charge}
