"""Credit orders paid by a PaymentIntent that the app's own page confirms (Stripe Elements, local methods
such as GrabPay, FPX, iDEAL or SEPA Direct Debit) instead of a hosted Checkout page.

    create_order            a pending order for one pack in one currency, priced from the catalog
    ensure_payment_intent   its one PaymentIntent (idempotency key from the order id; metadata order_id,
                            user_id), limited to the methods the currency allows
    confirm_payment         confirm with a PaymentMethod id, or a redirect method by type

Fulfilment is not here: a succeeded PaymentIntent goes to ``state.apply_payment_intent_state`` and from
there to the same ``fulfilment.fulfil_paid_order`` as Checkout, whether it is seen by the confirm call itself, by the
``payment_intent.succeeded`` webhook or by a status read, under the order row lock, exactly once.

Nothing here commits: routes own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.service import Principal
from ..catalog.payment_methods import (DELAYED_METHODS, REDIRECT_METHODS, PaymentMethodError, check_methods,
                                       retired_reason)
from ..catalog.service import Catalog
from ..config import Settings
from ..customers.models import User
from ..customers.service import ensure_stripe_customer, ensure_user
from ..errors import Conflict, Forbidden, InvalidRequest, NotFound
from ..stripe_gateway import CardError, InvalidRequestError, StripeGateway, idempotency_key, stripe_call
from .checkout import price_in_currency
from .models import Order
from .repository import find_order, lock_order
from .state import apply_payment_intent_state, retrieve_payment_intent

# Stripe accepts a confirmation (or a change of methods) only in these states.
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


@dataclass(frozen=True)
class PaymentState:
    """An order and its PaymentIntent as Stripe has it after our call; ``declined`` holds the decline when
    the confirmation was refused (the order is then failed with that message)."""

    order: Order
    payment_intent: dict[str, Any] | None
    declined: CardError | None = None

    @property
    def status(self) -> str:
        """The PaymentIntent's status, as frontends written for Stripe expect it; a paid order is
        ``succeeded`` whatever happened since (a refund does not un-pay it)."""
        if self.order.status in ("paid", "refunded"):
            return "succeeded"
        return str((self.payment_intent or {}).get("status") or "requires_payment_method")

    @property
    def next_action(self) -> dict[str, Any] | None:
        """What the buyer must do next, simplified: ``{type, redirect_url}``."""
        action = (self.payment_intent or {}).get("next_action") if self.status == "requires_action" else None
        if not action:
            return None
        kind = str(action.get("type") or "")
        details = action.get(kind) or {}
        if kind.endswith("_display_qr_code"):  # PayNow, WeChat Pay...: the page that shows the code to scan
            url = details.get("hosted_instructions_url")
        elif kind == "use_stripe_sdk":  # no return_url given: Stripe.js handles it (stripe.handleNextAction)
            url = details.get("stripe_js")
        else:  # redirect_to_url, alipay_handle_redirect
            url = details.get("url")
        return {"type": kind, "redirect_url": url}

    @property
    def payment_method_types(self) -> list[str]:
        return list((self.payment_intent or {}).get("payment_method_types") or [])


def _methods(catalog: Catalog, currency: str, requested: list[str], param: str) -> list[str]:
    try:
        return check_methods(catalog.payment_methods, currency, requested, param=param)
    except PaymentMethodError as exc:
        raise InvalidRequest(exc.message, param=exc.param) from None


# -- orders ---------------------------------------------------------------------------------------
async def create_order(session: AsyncSession, *, catalog: Catalog, principal: Principal, pack_id: str,
                       currency: str | None = None) -> Order:
    """A pending order for one pack (by id or lookup key) in one currency, at the catalog's price in that
    currency (the pack's own currency by default)."""
    pack = catalog.pack_by_reference(pack_id)
    if pack is None:
        raise InvalidRequest(f"No such pack: {pack_id!r}. Packs: {', '.join(catalog.packs)}.", param="pack_id")
    code, amount = price_in_currency(pack, currency)
    user = await ensure_user(session, principal)
    order = Order(id=str(uuid.uuid4()), user_id=user.id, pack_id=pack.id, pack_name=pack.name, amount=amount,
                  currency=code, coins=pack.coins, bonus=pack.bonus,
                  credits_expire_after_days=pack.expires_after_days, status="pending", kind="payment_intent")
    session.add(order)
    await session.flush()
    return order


async def owned_order(session: AsyncSession, principal: Principal, reference: str, *, param: str) -> Order:
    """The caller's order by id or PaymentIntent id, locked for this transaction: 404 unknown, 403 not theirs."""
    found = await find_order(session, reference)
    if found is None:
        raise NotFound(f"No such order: {reference!r}.", param=param)
    if found.user_id != principal.user_id:
        raise Forbidden("This order belongs to another user.", param=param)
    order = await lock_order(session, found.id)
    assert order is not None
    return order


# -- the PaymentIntent ------------------------------------------------------------------------------
async def ensure_payment_intent(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                                catalog: Catalog, principal: Principal, order_id: str,
                                payment_method_types: list[str] | None = None) -> PaymentState:
    """The order's one PaymentIntent, created on first call. ``payment_method_types`` narrows the methods
    (each must be allowed for the order's currency); by default every method the currency allows.
    A paid order answers its paid state; an expired one, or a Checkout order, is a 409."""
    order = await owned_order(session, principal, order_id, param="order_id")
    requested = _methods(catalog, order.currency, payment_method_types, "payment_method_types") \
        if payment_method_types is not None else None
    if order.stripe_payment_intent_id:
        pi = await retrieve_payment_intent(client, order.stripe_payment_intent_id)
        if order.status in ("paid", "refunded") or order.kind != "payment_intent":
            _refuse_checkout_order(order)
            return PaymentState(order, pi)
        await apply_payment_intent_state(session, settings=settings, order_id=order.id, pi=pi)
        if requested and pi.get("status") in CONFIRMABLE and pi.get("payment_method_types") != requested:
            pi = await _set_methods(client, pi["id"], requested)
        return PaymentState(order, pi)
    _refuse_checkout_order(order)
    if order.status in ("expired", "paid", "refunded"):
        raise Conflict(f"This order is {order.status}; create a new order.", param="order_id")
    user = await session.get(User, order.user_id)
    assert user is not None
    customer_id = await ensure_stripe_customer(session, client, user)
    # The create is the same request on every retry (all the currency's methods; the key is the order's),
    # so a crash between Stripe's answer and our commit can never make a second PaymentIntent.
    params: dict[str, Any] = {
        "amount": order.amount, "currency": order.currency, "customer": customer_id,
        "payment_method_types": catalog.payment_method_types(order.currency),
        "description": order.pack_name,
        "metadata": {"order_id": order.id, "user_id": order.user_id, "pack_id": order.pack_id},
    }
    async with stripe_call("creating the payment intent"):
        pi = await client.create_payment_intent(
            params, idempotency_key=idempotency_key("order", order.id, "payment_intent"))
    order.stripe_payment_intent_id = pi["id"]
    await session.flush()
    if requested and pi.get("payment_method_types") != requested:
        pi = await _set_methods(client, pi["id"], requested)
    return PaymentState(order, pi)


def _refuse_checkout_order(order: Order) -> None:
    if order.kind != "payment_intent" and order.status not in ("paid", "refunded"):
        raise Conflict("This order is paid through Stripe Checkout: send the buyer to its checkout_url, or "
                       "create an order with POST /v1/orders.", param="order_id")


async def _set_methods(client: StripeGateway, payment_intent_id: str, types: list[str]) -> dict[str, Any]:
    # Setting a list is idempotent by itself, so the SDK's own retry key suffices. A key derived from our ids
    # would be wrong here: a buyer switching card → grabpay → card would get Stripe's stored answer to the
    # first switch, and the PaymentIntent would keep grabpay.
    async with stripe_call("updating the payment intent"):
        return await client.update_payment_intent(payment_intent_id, {"payment_method_types": types},
                                                  idempotency_key=None)


# -- confirming -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mandate:
    """Who accepted a bank-debit mandate, from the request: Stripe needs it to confirm SEPA, Bacs and US
    bank debits from a server."""

    ip_address: str
    user_agent: str


async def confirm_payment(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                          catalog: Catalog, principal: Principal, reference: str,
                          payment_method_id: str | None, payment_method_type: str | None,
                          return_url: str | None, mandate: Mandate) -> PaymentState:
    """Confirm the order's PaymentIntent (``reference``: order id or PaymentIntent id) with a PaymentMethod
    id (cards, bank debits: created in the browser by Stripe.js) or, for redirect methods, by type alone.

    Answers the state after the call: ``succeeded`` (fulfilled already, in this transaction),
    ``requires_action`` with the redirect URL, ``processing`` (the order stays pending until the debit
    settles), or a decline (order failed with Stripe's message, ``declined`` set). A paid order answers its
    paid state and calls nothing; a confirmation already under way is not repeated."""
    param = "payment_intent_id" if reference.startswith("pi_") else "order_id"
    order = await owned_order(session, principal, reference, param=param)
    if order.status in ("paid", "refunded"):
        pi = await retrieve_payment_intent(client, order.stripe_payment_intent_id) \
            if order.stripe_payment_intent_id else None
        return PaymentState(order, pi)
    method = await _method_type(client, catalog, order, payment_method_id, payment_method_type, return_url)
    state = await ensure_payment_intent(session, client, settings=settings, catalog=catalog, principal=principal,
                                        order_id=order.id)
    pi = state.payment_intent or {}
    if pi.get("status") not in CONFIRMABLE:
        # Succeeded, processing or canceled already (a double click, a retry after a lost answer): say so
        # rather than confirm twice. Stripe's state is applied to the order on the way.
        await apply_payment_intent_state(session, settings=settings, order_id=order.id, pi=pi)
        if pi.get("status") == "canceled":
            raise Conflict("This order's payment was canceled; create a new order.", param=param)
        return PaymentState(order, pi)
    if method not in (pi.get("payment_method_types") or []):
        pi = await _set_methods(client, pi["id"], [*pi["payment_method_types"], method])
    params: dict[str, Any] = {}
    if payment_method_id:
        params["payment_method"] = payment_method_id
    else:
        params["payment_method_data"] = {"type": method}
    if return_url:
        params["return_url"] = return_url
    if method in DELAYED_METHODS:
        params["mandate_data"] = {"customer_acceptance": {"type": "online", "online": {
            "ip_address": mandate.ip_address, "user_agent": mandate.user_agent}}}
    declined: CardError | None = None
    # No idempotency key of our own: each confirmation is a new attempt (after a decline the buyer tries
    # again), and the state check above keeps a retried request from confirming twice.
    async with stripe_call("confirming the payment"), _stripe_refusals("payment_method_id"
                                                                       if payment_method_id else "return_url"):
        try:
            await client.confirm_payment_intent(pi["id"], params, idempotency_key=None)
        except CardError as exc:
            declined = exc
    pi = await retrieve_payment_intent(client, pi["id"])
    await apply_payment_intent_state(session, settings=settings, order_id=order.id, pi=pi)
    return PaymentState(order, pi, declined)


async def _method_type(client: StripeGateway, catalog: Catalog, order: Order, payment_method_id: str | None,
                       payment_method_type: str | None, return_url: str | None) -> str:
    """The payment method type this confirmation uses, checked against the order's currency."""
    declared = payment_method_type.strip().lower() if payment_method_type else None
    if declared and retired_reason(declared):
        raise InvalidRequest(retired_reason(declared) or "", param="payment_method_type")
    if payment_method_id:
        async with stripe_call("retrieving the payment method"), _stripe_refusals("payment_method_id"):
            pm = await client.retrieve_payment_method(payment_method_id)
        method = str(pm.get("type"))
        if declared and declared != method:
            raise InvalidRequest(f"The payment method {payment_method_id} is a {method}, not a {declared}.",
                                 param="payment_method_type")
    elif declared:
        method = declared
    else:
        raise InvalidRequest("Send payment_method_id, or payment_method_type for a redirect method.",
                             param="payment_method_type")
    _methods(catalog, order.currency, [method], "payment_method_type")
    if not payment_method_id and method not in REDIRECT_METHODS:
        raise InvalidRequest(f"{method} needs the buyer's details: create the PaymentMethod in the browser with "
                             "Stripe.js (Elements) and send its id as payment_method_id.",
                             param="payment_method_id")
    if method in REDIRECT_METHODS and not return_url:
        raise InvalidRequest(f"{method} sends the buyer to authorize the payment: return_url is required.",
                             param="return_url")
    return method


@asynccontextmanager
async def _stripe_refusals(param: str) -> AsyncIterator[None]:
    """Stripe refusing a request for its content (no such PaymentMethod, a method the PaymentIntent cannot
    use) is the caller's mistake: a 400 with Stripe's message, not a 500."""
    try:
        yield
    except InvalidRequestError as exc:
        message = exc.user_message or getattr(exc.error, "message", None) or str(exc)
        raise InvalidRequest(message, param=getattr(exc.error, "param", None) or param) from exc
