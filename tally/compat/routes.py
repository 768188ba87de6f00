"""Drop-in routes for frontends written against the usual Stripe integration guides: the same paths and
JSON they already call, each a thin adapter over Tally's own services (checkout, orders, PaymentIntent
orders, the webhook receiver). No second checkout, fulfilment or ledger lives here.

Auth is the same as ``/v1``: the user's bearer JWT, or the API key for a server that proxies, with the user
named in the body (``user_id`` / ``userId``) or the ``Tally-User-Id`` header.

Errors: ``/api/payment/*`` answers Tally's standard ``{"error": {"type", "message", "param"}}``;
``/api/stripe/*`` and ``/api/business/*`` answer that family's ``{"success": false, "error": {"message"}}``
with the same status codes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..auth.deps import authenticate
from ..auth.service import Principal
from ..deps import (CatalogDep, DatabaseDep, MandateDep, PlanBookDep, PlanPricesDep, PriceBookDep, SessionDep,
                    SettingsDep, StripeDep)
from ..errors import Forbidden, InvalidRequest, PaymentFailed, TallyError
from ..orders import intents
from ..orders import service as orders
from ..orders.confirmation import confirm_order_payment
from ..webhooks.routes import mount_receiver
from . import service
from .schemas import (ConfirmPaymentIn, ConfirmPaymentOut, CreatePaymentIntentIn, CreatePaymentIntentOut,
                      CreditOrderIn, CreditOrderOut, FamilyError, NextAction, PaymentCheckoutIn,
                      PaymentCheckoutOut, PaymentStatusOut, StripeCheckoutData, StripeCheckoutIn,
                      StripeCheckoutOut)


def family_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "error": {"message": message}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"msg": "Invalid request", "loc": ()}
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    param = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header"))
    return f"{param}: {first['msg']}" if param else str(first["msg"])


class FamilyErrorRoute(APIRoute):
    """Renders every error of the route (bad body, auth, Tally's errors) in the ``/api/stripe`` family's
    shape, so the frontend's ``if (!res.success) show(res.error.message)`` works for all of them."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except TallyError as exc:
                return family_error(exc.status, exc.message, exc.headers)
            except RequestValidationError as exc:
                return family_error(400, _validation_message(exc))
            except StarletteHTTPException as exc:
                return family_error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

        return route


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"}, 401: {"description": "Not signed in"},
    403: {"description": "Another user's order, or a userId that is not the signed-in user"},
    404: {"description": "Unknown order"}, 503: {"description": "Stripe unavailable; nothing was written"}}
FAMILY_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {**info, "model": FamilyError} for code, info in
    {**ERRORS, 402: {"description": "Declined; the order is failed with the message"},
     409: {"description": "The order cannot be paid this way"}}.items()}

payment_router = APIRouter(prefix="/api/payment", tags=["compatibility"])
stripe_router = APIRouter(tags=["compatibility"], route_class=FamilyErrorRoute)
webhook_router = APIRouter(tags=["compatibility"])

# The very same receiver as /v1/webhooks/stripe (signature on the raw body, inbox, worker), at the paths
# the guides tell people to register in the Stripe dashboard.
for _path in ("/api/payment/webhook", "/api/stripe/webhook"):
    mount_receiver(webhook_router, _path, summary="Stripe webhook endpoint (same as /v1/webhooks/stripe)")


async def _principal(request: Request, user_id: str | None, email: str | None = None, *,
                     param: str = "userId") -> Principal:
    """The caller; a user id in the body must be the signed-in user unless the API key is used, in which
    case it names the user the server acts for."""
    principal = await authenticate(request, user_id=user_id, email=email)
    if not principal.via_api_key and user_id is not None and user_id != principal.user_id:
        raise Forbidden(f"{param} must be the signed-in user's id.", param=param)
    return principal


# ``?lang=zh`` as the guides' frontends send it: Checkout's locale (Stripe's list, else auto) and the receipts'.
LangQuery = Annotated[str | None, Query(max_length=35, description="The buyer's language (en, zh, …)")]


# -- /api/payment ------------------------------------------------------------------------------------
@payment_router.post("/create-checkout-session", response_model=PaymentCheckoutOut, responses=ERRORS)
async def payment_create_checkout_session(body: PaymentCheckoutIn, request: Request, catalog: CatalogDep,
                                          prices: PriceBookDep, session: SessionDep, client: StripeDep,
                                          settings: SettingsDep, lang: LangQuery = None) -> PaymentCheckoutOut:
    """Checkout for the pack that ``price_usd``, ``coins`` and ``bonus`` describe. They must match a catalog
    pack exactly: the price is the catalog's, never the client's."""
    principal = await _principal(request, body.user_id, param="user_id")
    pack = service.described_pack(catalog, price_usd=body.price_usd, coins=body.coins, bonus=body.bonus)
    started = await orders.create_checkout(
        session, client, settings=settings, catalog=catalog, prices=prices, principal=principal, pack_id=pack.id,
        success_url=body.success_url, cancel_url=body.cancel_url, locale=lang)
    return PaymentCheckoutOut(session_id=started.session_id, checkout_url=started.checkout_url)


LegacyStatus = Literal["pending", "completed", "failed", "expired"]
_LEGACY_STATUS: dict[str, LegacyStatus] = {"pending": "pending", "paid": "completed", "refunded": "completed",
                                           "failed": "failed", "expired": "expired"}


@payment_router.get("/status/{session_id}", response_model=PaymentStatusOut, responses=ERRORS)
async def payment_status(session_id: str, request: Request, session: SessionDep, client: StripeDep,
                         settings: SettingsDep) -> PaymentStatusOut:
    """The purchase behind a Checkout Session (checked with Stripe and fulfilled at once if paid).
    ``completed`` includes a purchase refunded since: the payment did complete; the refund shows in the
    balance and the transactions."""
    principal = await authenticate(request)
    status = await orders.get_order_status(session, client, settings=settings, principal=principal,
                                           order_or_session_id=session_id)
    legacy = _LEGACY_STATUS[status.order.status]
    done = legacy == "completed"
    return PaymentStatusOut(status=legacy, session_id=status.order.stripe_checkout_session_id or session_id,
                            coins_added=status.coins_added if done else None,
                            new_balance=status.balance if done else None)


# -- /api/stripe and /api/business ---------------------------------------------------------------------
# These routes open their transactions themselves (DatabaseDep): FamilyErrorRoute answers their errors before
# a SessionDep would see them (tally.deps).
@stripe_router.post("/api/stripe/create-checkout-session", response_model=StripeCheckoutOut,
                    responses=FAMILY_ERRORS)
async def stripe_create_checkout_session(body: StripeCheckoutIn, request: Request, catalog: CatalogDep,
                                         prices: PriceBookDep, book: PlanBookDep, plan_prices: PlanPricesDep,
                                         db: DatabaseDep, client: StripeDep, settings: SettingsDep,
                                         lang: LangQuery = None) -> StripeCheckoutOut:
    """Checkout for the catalog price ``priceId`` names (a Stripe price id or a lookup key): a pack's, or a
    plan's recurring price (Checkout in subscription mode)."""
    principal = await _principal(request, body.userId, body.userEmail)
    async with db.transaction() as session:
        started = await service.checkout_for_price(
            session, client, settings=settings, catalog=catalog, prices=prices, book=book, plan_prices=plan_prices,
            principal=principal, price_reference=body.priceId, success_url=body.successUrl,
            cancel_url=body.cancelUrl, locale=lang)
    return StripeCheckoutOut(data=StripeCheckoutData(sessionId=started.session_id, url=started.checkout_url))


@stripe_router.post("/api/business/credit-orders", response_model=CreditOrderOut, responses=FAMILY_ERRORS)
async def business_credit_order(body: CreditOrderIn, request: Request, catalog: CatalogDep,
                                db: DatabaseDep) -> CreditOrderOut:
    """A pending credit order for a pack (``planId``: pack id or lookup key), paid next through
    ``/api/stripe/create-payment-intent`` and ``/api/stripe/confirm-payment``."""
    principal = await _principal(request, body.userId)
    async with db.transaction() as session:
        try:
            order = await intents.create_order(session, catalog=catalog, principal=principal, pack_id=body.planId,
                                               currency=body.currency)
        except InvalidRequest as exc:
            raise InvalidRequest(exc.message, param="planId" if exc.param == "pack_id" else exc.param) from None
    return CreditOrderOut(id=order.id, orderId=order.id, planId=order.pack_id, status=order.status,
                          amount=order.amount, currency=order.currency, coins=order.coins, bonus=order.bonus)


@stripe_router.post("/api/stripe/create-payment-intent", response_model=CreatePaymentIntentOut,
                    responses=FAMILY_ERRORS)
async def stripe_create_payment_intent(body: CreatePaymentIntentIn, request: Request, catalog: CatalogDep,
                                       db: DatabaseDep, client: StripeDep,
                                       settings: SettingsDep) -> CreatePaymentIntentOut:
    """The order's PaymentIntent (one per order), for Stripe.js: client secret and offered methods."""
    principal = await _principal(request, body.userId)
    async with db.transaction() as session:
        state = await intents.ensure_payment_intent(
            session, client, settings=settings, catalog=catalog, principal=principal, order_id=body.orderId,
            payment_method_types=body.paymentMethodTypes)
    pi = state.payment_intent or {}
    return CreatePaymentIntentOut(clientSecret=pi.get("client_secret"), paymentIntentId=pi.get("id"),
                                  paymentMethodTypes=state.payment_method_types)


@stripe_router.post("/api/stripe/confirm-payment", response_model=ConfirmPaymentOut,
                    response_model_exclude_none=True, responses=FAMILY_ERRORS)
async def stripe_confirm_payment(body: ConfirmPaymentIn, request: Request, catalog: CatalogDep, db: DatabaseDep,
                                 client: StripeDep, settings: SettingsDep, mandate: MandateDep) -> ConfirmPaymentOut:
    """Confirm with ``paymentMethodId`` or, for redirect methods (alipay, grabpay, fpx, ideal, ...), with
    ``paymentMethodType`` alone: ``nextAction.redirectUrl`` is then the page to send the buyer to. A paid
    order answers ``succeeded``; a decline is a 402 with Stripe's message."""
    principal = await _principal(request, body.userId)
    state = await confirm_order_payment(
        db, client, settings=settings, catalog=catalog, principal=principal, reference=body.paymentIntentId,
        payment_method_id=body.paymentMethodId, payment_method_type=body.paymentMethodType,
        return_url=body.returnUrl, mandate=mandate)
    if state.declined is not None:
        raise PaymentFailed(state.order.failure_message or "The payment was declined.")
    action = state.next_action
    return ConfirmPaymentOut(status=state.status, nextAction=NextAction(type=action["type"],
                                                                         redirectUrl=action["redirect_url"])
                             if action else None)


def routers() -> list[APIRouter]:
    return [payment_router, stripe_router, webhook_router]
