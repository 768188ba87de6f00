"""Subscription routes: ``GET /v1/plans``, ``POST /v1/subscriptions/checkout``, ``GET /v1/subscription``,
``POST /v1/subscription/change|cancel|resume``, ``POST /v1/portal``, and ``GET /billing/portal/{token}`` (the
link in dunning and trial emails)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from ..auth.deps import CurrentUser
from ..catalog.routes import get_catalog
from ..errors import NotFound
from . import billing, mirror, service
from .plans import PlanBook, PlanPrices, plan_book
from .schemas import (CancelIn, ChangeIn, PlanOut, PlansOut, PortalOut, SubscriptionCheckoutIn,
                      SubscriptionCheckoutOut, SubscriptionOut)

router = APIRouter(tags=["subscriptions"])

ERRORS = {400: {"description": "Invalid request"}, 401: {"description": "Not signed in"},
          503: {"description": "Stripe unavailable; nothing was written"}}
OWNED = {**ERRORS, 404: {"description": "No subscription"}, 409: {"description": "Not possible in this state"}}


def plan_book_of(request: Request) -> PlanBook:
    """The plans (also read by the pricing and account pages)."""
    return plan_book(request.app.state.settings)


def plan_prices_of(request: Request) -> PlanPrices:
    state = request.app.state
    if not hasattr(state, "plan_prices"):
        state.plan_prices = PlanPrices()
    return state.plan_prices


@router.get("/v1/plans", response_model=PlansOut)
async def list_plans(request: Request) -> PlansOut:
    """The subscription plans: a monthly and/or yearly price each (minor units), credits per period, features."""
    return PlansOut(data=[PlanOut.of(p) for p in plan_book_of(request).ranked()])


@router.post("/v1/subscriptions/checkout", response_model=SubscriptionCheckoutOut,
             responses={**ERRORS, 409: {"description": "Already subscribed"}})
async def subscription_checkout(body: SubscriptionCheckoutIn, principal: CurrentUser,
                                request: Request) -> SubscriptionCheckoutOut:
    """Subscribe through Stripe Checkout; send the user to ``checkout_url``. Credits arrive with each paid invoice."""
    async with request.app.state.db.transaction() as session:
        started = await service.start_checkout(
            session, request.app.state.stripe, settings=request.app.state.settings, book=plan_book_of(request),
            prices=plan_prices_of(request), catalog=get_catalog(request), principal=principal, plan_id=body.plan_id,
            interval=body.interval, success_url=body.success_url, cancel_url=body.cancel_url, locale=body.locale)
    return SubscriptionCheckoutOut(session_id=started.session_id, checkout_url=started.checkout_url)


@router.get("/v1/subscription", response_model=SubscriptionOut, responses=ERRORS)
async def read_subscription(principal: CurrentUser, request: Request) -> SubscriptionOut:
    """The caller's subscription; ``status: "none"`` (other fields null) when there is none."""
    async with request.app.state.db.transaction() as session:
        row = await mirror.current(session, principal.user_id)
        return SubscriptionOut.model_validate(service.view(row, plan_book_of(request)))


@router.post("/v1/subscription/change", response_model=SubscriptionOut, responses=OWNED)
async def change_subscription(body: ChangeIn, principal: CurrentUser, request: Request) -> SubscriptionOut:
    """Upgrade now (prorated invoice, prorated extra credits) or downgrade at the end of the period."""
    row = await service.change_plan(request.app.state.db, request.app.state.stripe, book=plan_book_of(request),
                                    prices=plan_prices_of(request), principal=principal, plan_id=body.plan_id,
                                    interval=body.interval)
    return SubscriptionOut.model_validate(service.view(row, plan_book_of(request)))


@router.post("/v1/subscription/cancel", response_model=SubscriptionOut, responses=OWNED)
async def cancel_subscription(principal: CurrentUser, request: Request,
                              body: CancelIn | None = None) -> SubscriptionOut:
    """Cancel at the end of the period (access until then), or ``{"immediately": true}`` to end it now."""
    async with request.app.state.db.transaction() as session:
        row = await service.cancel(session, request.app.state.stripe, book=plan_book_of(request),
                                   principal=principal, immediately=bool(body and body.immediately))
        return SubscriptionOut.model_validate(service.view(row, plan_book_of(request)))


@router.post("/v1/subscription/resume", response_model=SubscriptionOut, responses=OWNED)
async def resume_subscription(principal: CurrentUser, request: Request) -> SubscriptionOut:
    """Undo a cancellation at period end, or resume a paused subscription."""
    async with request.app.state.db.transaction() as session:
        row = await service.resume(session, request.app.state.stripe, book=plan_book_of(request), principal=principal)
        return SubscriptionOut.model_validate(service.view(row, plan_book_of(request)))


@router.post("/v1/portal", response_model=PortalOut,
             responses={**ERRORS, 503: {"description": "Stripe or its billing portal unavailable"}})
async def open_portal(principal: CurrentUser, request: Request) -> PortalOut:
    """A Stripe billing portal session (update the card, switch plan, cancel, invoices); returns to /account."""
    async with request.app.state.db.transaction() as session:
        url = await service.portal_url(session, request.app.state.stripe, settings=request.app.state.settings,
                                       principal=principal)
    return PortalOut(url=url)


@router.get("/billing/portal/{token}", include_in_schema=False)
async def portal_from_email(token: str, request: Request) -> RedirectResponse:
    """The link in billing emails: signed, valid 14 days, opens a fresh portal session for its customer."""
    settings = request.app.state.settings
    customer = billing.customer_from_link(settings, token)
    if customer is None:
        raise NotFound("This link has expired; sign in to manage billing.")
    url = await service.portal_url_for_customer(request.app.state.stripe, settings, customer)
    return RedirectResponse(url, status_code=303)
