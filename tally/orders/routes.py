"""``POST /v1/checkout``, ``GET /v1/orders/{id}``, and orders paid by PaymentIntents: ``POST /v1/orders``,
``POST /v1/orders/{id}/payment-intent``, ``POST /v1/orders/{id}/confirm``."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import (CatalogDep, CurrentUser, DatabaseDep, MandateDep, PriceBookDep, SessionDep, SettingsDep,
                    StripeDep)
from ..errors import PaymentFailed
from ..ledger import service as ledger
from . import intents, service
from .confirmation import confirm_order_payment
from .schemas import (CheckoutIn, CheckoutOut, ConfirmIn, ConfirmOut, OrderIn, OrderOut, PaymentIntentIn,
                      PaymentIntentOut)

router = APIRouter(tags=["orders"])

ERRORS = {400: {"description": "Invalid request"}, 401: {"description": "Not signed in"},
          503: {"description": "Stripe unavailable; nothing was written"}}
OWNED = {**ERRORS, 403: {"description": "Another user's order"}, 404: {"description": "Unknown"},
         409: {"description": "The order cannot be paid this way (expired, canceled, or a Checkout order)"}}


@router.post("/v1/checkout", response_model=CheckoutOut, responses=ERRORS)
async def checkout(body: CheckoutIn, principal: CurrentUser, catalog: CatalogDep, prices: PriceBookDep,
                   session: SessionDep, client: StripeDep, settings: SettingsDep) -> CheckoutOut:
    """Start buying a pack: a pending order and a Stripe Checkout Session; send the buyer to
    ``checkout_url``. The price is the catalog's; the client only names the pack and, optionally, one of
    the currencies the catalog prices it in."""
    started = await service.create_checkout(
        session, client, settings=settings, catalog=catalog, prices=prices, principal=principal,
        pack_id=body.pack_id, success_url=body.success_url, cancel_url=body.cancel_url, currency=body.currency,
        locale=body.locale)
    return CheckoutOut(order_id=started.order_id, session_id=started.session_id, checkout_url=started.checkout_url)


@router.get("/v1/orders/{order_id}", response_model=OrderOut, responses=OWNED)
async def read_order(order_id: str, principal: CurrentUser, session: SessionDep, client: StripeDep,
                     settings: SettingsDep) -> OrderOut:
    """An order by its id, its Checkout Session id (``cs_…``) or its PaymentIntent id (``pi_…``), to its
    owner. A pending order is checked with Stripe and fulfilled at once if paid."""
    status = await service.get_order_status(session, client, settings=settings, principal=principal,
                                            order_or_session_id=order_id)
    return OrderOut.of(status.order, coins_added=status.coins_added, balance=status.balance, invoice=status.invoice)


@router.post("/v1/orders", response_model=OrderOut, responses=ERRORS)
async def create_order(body: OrderIn, principal: CurrentUser, catalog: CatalogDep, session: SessionDep) -> OrderOut:
    """A pending order for a pack in one currency, to be paid by a PaymentIntent that your page confirms
    (``/payment-intent``, then ``/confirm``, or Stripe.js with the client secret)."""
    order = await intents.create_order(session, catalog=catalog, principal=principal, pack_id=body.pack_id,
                                       currency=body.currency)
    return OrderOut.of(order, coins_added=0, balance=await ledger.get_balance(session, order.user_id), invoice=None)


@router.post("/v1/orders/{order_id}/payment-intent", response_model=PaymentIntentOut, responses=OWNED)
async def order_payment_intent(order_id: str, principal: CurrentUser, catalog: CatalogDep, session: SessionDep,
                               client: StripeDep, settings: SettingsDep,
                               body: PaymentIntentIn | None = None) -> PaymentIntentOut:
    """The order's PaymentIntent (created once; asking again answers the same one): its client secret for
    Stripe.js and the methods it offers. A paid order answers its paid state."""
    state = await intents.ensure_payment_intent(
        session, client, settings=settings, catalog=catalog, principal=principal, order_id=order_id,
        payment_method_types=body.payment_method_types if body else None)
    return PaymentIntentOut.of(state)


@router.post("/v1/orders/{order_id}/confirm", response_model=ConfirmOut,
             responses={**OWNED, 402: {"description": "Declined; the order is failed with the message"}})
async def confirm_order(order_id: str, body: ConfirmIn, principal: CurrentUser, catalog: CatalogDep,
                        db: DatabaseDep, client: StripeDep, settings: SettingsDep, mandate: MandateDep) -> ConfirmOut:
    """Pay the order: with ``payment_method_id`` (from Stripe.js), or with ``payment_method_type`` for a
    redirect method (answers ``next_action.redirect_url``). Bank debits answer ``processing``: the order
    stays pending until they settle. A decline is a 402 and leaves the order failed with its message."""
    # DatabaseDep: the confirmation commits before a decline is raised (see confirm_order_payment).
    state = await confirm_order_payment(
        db, client, settings=settings, catalog=catalog, principal=principal, reference=order_id,
        payment_method_id=body.payment_method_id, payment_method_type=body.payment_method_type,
        return_url=body.return_url, mandate=mandate)
    out = ConfirmOut.of(state)
    if state.declined is not None:
        raise_declined(state)
    return out


def raise_declined(state: intents.PaymentState) -> None:
    exc = state.declined
    assert exc is not None
    raise PaymentFailed(state.order.failure_message or exc.user_message or "The payment was declined.",
                        param="payment_method_id", code=exc.code,
                        decline_code=getattr(exc.error, "decline_code", None))
