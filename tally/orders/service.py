"""Orders: checkout creation, status, and fulfilment — the one place where a payment becomes credits.

Fulfilment is reached from several doors that race: the webhook handlers (``checkout.session.completed``,
``checkout.session.async_payment_succeeded``, ``payment_intent.succeeded``, in any order, any number of
times) and ``GET /v1/orders/{id}`` when the user lands back on the success page. Each door re-fetches the
Checkout Session from Stripe and hands its *current* state to ``apply_session_state``, which locks the
order row (``SELECT … FOR UPDATE``) and acts once: ``fulfil_paid_order`` writes order → paid, the ledger
transaction (unique reference ``order:{id}:purchase``), the balance and the invoice (unique per order) in
the caller's transaction. The lock serialises the doors; the unique constraints make a second fulfilment
impossible even if the lock were bypassed.

Nothing here commits: routes and webhook handlers own the transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..auth.service import Principal
from ..catalog.service import Catalog, Pack, PriceBook
from ..checkout_locale import checkout_locale
from ..config import Settings
from ..customers.models import User
from ..customers.service import ensure_stripe_customer, ensure_user
from ..errors import Forbidden, InvalidRequest, NotFound, UpstreamUnavailable
from ..invoices.models import Invoice
from ..invoices.service import invoice_for_order, issue_invoice
from ..ledger import credits, references
from ..ledger import service as ledger
from ..receipts import service as receipts
from ..stripe_gateway import StripeGateway, idempotency_key, object_id, stripe_call
from .discounts import AppliedDiscount, discount_line, discount_of
from .taxes import AppliedTax, tax_of
from .models import Order

log = logging.getLogger("tally.orders")

# An event naming an order we cannot find is retried while the order may still be committing (the
# checkout request that created it is a few seconds old at most); after this it is not ours to fulfil.
UNKNOWN_ORDER_GRACE_SECONDS = 600


class OrderNotFoundYet(Exception):
    """A Stripe object names a Tally order that is not in the database yet: raise so the event is retried."""


# -- checkout -------------------------------------------------------------------------------------
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


# -- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderStatus:
    order: Order
    coins_added: int
    balance: int
    invoice: Invoice | None


async def find_order(session: AsyncSession, order_or_session_id: str) -> Order | None:
    """An order by its id, its Checkout Session id (``cs_…``) or its PaymentIntent id (``pi_…``)."""
    if order_or_session_id.startswith("pi_"):
        return await session.scalar(select(Order).where(Order.stripe_payment_intent_id == order_or_session_id))
    column = Order.stripe_checkout_session_id if order_or_session_id.startswith("cs_") else Order.id
    if column is Order.id:
        try:
            uuid.UUID(order_or_session_id)
        except ValueError:
            return None
    return await session.scalar(select(Order).where(column == order_or_session_id))


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


# -- Stripe state → order state -------------------------------------------------------------------
async def retrieve_checkout_session(client: StripeGateway, session_id: str) -> dict[str, Any]:
    async with stripe_call("retrieving the checkout session"):
        return await client.retrieve_checkout_session(session_id, expand=["payment_intent"])


async def lock_order(session: AsyncSession, order_id: str) -> Order | None:
    return await session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                                .execution_options(populate_existing=True))


def _payment_intent(checkout: dict[str, Any]) -> dict[str, Any] | None:
    pi = checkout.get("payment_intent")
    return pi if isinstance(pi, dict) else None


async def apply_session_state(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                              order_id: str, checkout: dict[str, Any]) -> Order | None:
    """Bring the order in line with a freshly retrieved Checkout Session: paid → fulfil; expired →
    expired; a failed payment attempt → failed (a later success still fulfils). Idempotent."""
    pi = _payment_intent(checkout)
    # A code that took the whole price leaves nothing to pay: the session completes "no_payment_required".
    free = checkout.get("status") == "complete" and checkout.get("payment_status") == "no_payment_required"
    if checkout.get("payment_status") == "paid" or free:
        details = checkout.get("customer_details") or {}
        return await fulfil_paid_order(
            session, order_id=order_id, settings=settings,
            payment_intent_id=object_id(checkout.get("payment_intent")), checkout_session_id=checkout.get("id"), paid_amount=checkout.get("amount_total"),
            paid_currency=checkout.get("currency"), customer_name=details.get("name"),
            customer_email=details.get("email"), discount=await discount_of(client, checkout),
            tax=await tax_of(client, checkout))
    if checkout.get("status") == "expired":
        return await mark_expired(session, order_id=order_id)
    # A declined attempt on an open session (the buyer may retry on the page), or a delayed method that
    # failed after the session completed unpaid (nothing more will happen).
    if pi is not None and pi.get("status") in ("requires_payment_method", "canceled") and (
            pi.get("last_payment_error") or checkout.get("status") == "complete"):
        return await mark_failed(session, order_id=order_id,
                                 message=(pi.get("last_payment_error") or {}).get("message"))
    return await session.get(Order, order_id)


async def retrieve_payment_intent(client: StripeGateway, payment_intent_id: str) -> dict[str, Any]:
    """The PaymentIntent as Stripe has it now, with its latest charge (billing details for the invoice)."""
    async with stripe_call("retrieving the payment intent"):
        return await client.retrieve_payment_intent(payment_intent_id, expand=["latest_charge"])


async def apply_payment_intent_state(session: AsyncSession, *, settings: Settings, order_id: str,
                                     pi: dict[str, Any]) -> Order | None:
    """Bring a PaymentIntent order in line with a freshly retrieved PaymentIntent: succeeded → fulfil
    (the same ``fulfil_paid_order`` as Checkout); a declined or failed attempt → failed with Stripe's
    message; processing (bank debits) or waiting for the customer's redirect → pending. Idempotent."""
    order = await lock_order(session, order_id)
    if order is None:
        raise OrderNotFoundYet(order_id)
    if order.stripe_payment_intent_id not in (None, pi.get("id")):
        log.warning("payment intent %s is not the payment of order %s: ignored", pi.get("id"), order_id)
        return order
    status = pi.get("status")
    if status == "succeeded":
        charge = pi.get("latest_charge")
        billing = (charge.get("billing_details") if isinstance(charge, dict) else None) or {}
        return await fulfil_paid_order(
            session, order_id=order_id, settings=settings, payment_intent_id=pi.get("id"),
            paid_amount=pi.get("amount_received") or pi.get("amount"), paid_currency=pi.get("currency"),
            customer_name=billing.get("name"), customer_email=billing.get("email") or pi.get("receipt_email"))
    error = pi.get("last_payment_error") or {}
    if status == "requires_payment_method" and error:
        return await mark_failed(session, order_id=order_id, message=error.get("message"))
    if status == "canceled":
        return await mark_failed(session, order_id=order_id, message="The payment was canceled.")
    if status in ("processing", "requires_action") and order.status == "failed":
        # A new attempt after a failed one (another card, a bank debit): the order waits again.
        order.status = "pending"
        order.failure_message = None
        await session.flush()
    return order


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
    if paid_amount is not None and (paid_amount != order.amount or paid_currency != order.currency):
        # Money was taken, so the pack is still granted; the mismatch needs a human, not a silent change.
        log.error("order %s paid %s %s but was created for %s %s", order.id, paid_amount, paid_currency,
                  order.amount, order.currency)
    user = await session.get(User, order.user_id)
    assert user is not None
    description = f"{order.pack_name} ({order.coins} coins" + (f" + {order.bonus} bonus)" if order.bonus else ")")
    paid_at = datetime.now(UTC)
    expires_at = (paid_at + timedelta(days=order.credits_expire_after_days)
                  if order.credits_expire_after_days else None)
    await credits.grant_pack(session, user_id=order.user_id, order_id=order.id, coins=order.coins, bonus=order.bonus,
                             description=description, expires_at=expires_at,
                             details={"payment_intent": payment_intent_id, "pack_id": order.pack_id})
    order.status = "paid"
    order.paid_at = paid_at
    order.failure_message = None
    if payment_intent_id and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = payment_intent_id  # unique: one payment fulfils one order
    if checkout_session_id and not order.stripe_checkout_session_id:
        order.stripe_checkout_session_id = checkout_session_id
    await session.flush()
    invoice = await issue_invoice(session, order_id=order.id, user_id=order.user_id, amount=order.amount,
                        currency=order.currency, description=description, coins=order.coins, bonus=order.bonus,
                        unit_amount=order.price_before_discount,
                        discount_line=discount_line(discount, order.currency) if discount else None, tax=tax,
                        customer_name=customer_name or user.name or customer_email or user.email,
                        customer_email=customer_email or user.email, seller_name=settings.seller_name)
    await receipts.order_paid(session, settings, order=order, invoice=invoice)
    return order


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


async def mark_failed(session: AsyncSession, *, order_id: str, message: str | None) -> Order | None:
    """A payment attempt failed (declined card, failed async payment). Only a pending order changes;
    the Checkout page stays usable, and a later successful attempt still fulfils the order."""
    order = await lock_order(session, order_id)
    if order is not None and order.status in ("pending", "failed"):
        order.status = "failed"
        order.failure_message = (message or "The payment failed.")[:1000]
        await session.flush()
    return order


async def mark_expired(session: AsyncSession, *, order_id: str) -> Order | None:
    """The Checkout Session expired unpaid: the order can no longer be paid."""
    order = await lock_order(session, order_id)
    if order is not None and order.status in ("pending", "failed"):
        order.status = "expired"
        await session.flush()
    return order


# -- webhook entry points (called by tally.orders.handlers) ---------------------------------------
def _order_id_from(metadata: dict[str, Any] | None, what: str) -> str | None:
    """The Tally order named in Stripe metadata, or None when the object is not Tally's to act on."""
    order_id = (metadata or {}).get("order_id")
    if not order_id:
        log.info("%s has no metadata.order_id: not created by Tally, ignored", what)
        return None
    try:
        uuid.UUID(str(order_id))
    except ValueError:
        log.info("%s names order %r, which is not a Tally order id: ignored", what, order_id)
        return None
    return str(order_id)


async def _known_order(session: AsyncSession, order_id: str, created: int | None, what: str) -> bool:
    if await session.scalar(select(Order.id).where(Order.id == order_id)) is not None:
        return True
    if created is not None and time.time() - created > UNKNOWN_ORDER_GRACE_SECONDS:
        log.warning("%s names order %s, unknown here: ignored", what, order_id)
        return False
    raise OrderNotFoundYet(f"{what} names order {order_id}, not in the database yet")


async def on_checkout_session(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                              checkout_session_id: str) -> Order | None:
    """``checkout.session.*`` events: re-fetch the session and apply its current state."""
    checkout = await retrieve_checkout_session(client, checkout_session_id)
    what = f"checkout session {checkout_session_id}"
    order_id = _order_id_from(checkout.get("metadata"), what)
    if order_id is None or not await _known_order(session, order_id, checkout.get("created"), what):
        return None
    return await apply_session_state(session, client, settings=settings, order_id=order_id, checkout=checkout)


async def on_payment_intent(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                            payment_intent_id: str) -> Order | None:
    """``payment_intent.*`` events: find the order through the PaymentIntent's metadata. A PaymentIntent
    order follows its PaymentIntent; a Checkout order acts on its Checkout Session as retrieved now (it
    carries the customer details for the invoice)."""
    pi = await retrieve_payment_intent(client, payment_intent_id)
    what = f"payment intent {payment_intent_id}"
    order_id = _order_id_from(pi.get("metadata"), what)
    if order_id is None or not await _known_order(session, order_id, pi.get("created"), what):
        return None
    order = await session.get(Order, order_id)
    assert order is not None
    if order.kind == "payment_intent":
        # Paid by a PaymentIntent of its own (no Checkout Session): the PaymentIntent is the whole story.
        return await apply_payment_intent_state(session, settings=settings, order_id=order_id, pi=pi)
    if not order.stripe_checkout_session_id:
        raise OrderNotFoundYet(f"order {order_id} has no checkout session yet")
    checkout = await retrieve_checkout_session(client, order.stripe_checkout_session_id)
    if object_id(checkout.get("payment_intent")) not in (None, payment_intent_id):
        log.warning("%s is not the payment of order %s: ignored", what, order_id)
        return order
    if checkout.get("payment_status") != "paid" and pi.get("status") == "succeeded":
        # The session may lag a moment behind its PaymentIntent; the PaymentIntent is the money.
        checkout = {**checkout, "payment_status": "paid", "payment_intent": pi,
                    "amount_total": pi.get("amount_received") or pi.get("amount"), "currency": pi.get("currency")}
    elif _payment_intent(checkout) is None:
        checkout = {**checkout, "payment_intent": pi}
    return await apply_session_state(session, client, settings=settings, order_id=order_id, checkout=checkout)


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
        order_id = _order_id_from(charge.get("metadata"), what)
        if order_id is None and payment_intent_id:
            async with stripe_call("retrieving the payment intent"):
                pi = await client.retrieve_payment_intent(payment_intent_id)
            order_id = _order_id_from(pi.get("metadata"), what)
        if order_id is None or not await _known_order(session, order_id, charge.get("created"), what):
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
