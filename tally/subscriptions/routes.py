"""Subscription routes: ``GET /v1/plans``, ``POST /v1/subscriptions/checkout``, ``GET /v1/subscription``,
``POST /v1/subscription/change|cancel|resume``, ``POST /v1/portal``, and ``GET /billing/portal/{token}`` (the
link in dunning and trial emails)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from ..deps import (CatalogDep, CurrentUser, DatabaseDep, PlanBookDep, PlanPricesDep, SessionDep, SettingsDep,
                    StripeDep)
from ..errors import NotFound
from . import billing, mirror, service
from .schemas import (CancelIn, ChangeIn, PlanOut, PlansOut, PortalOut, SubscriptionCheckoutIn,
                      SubscriptionCheckoutOut, SubscriptionOut)

router = APIRouter(tags=["subscriptions"])

ERRORS = {400: {"description": "Invalid request"}, 401: {"description": "Not signed in"},
          503: {"description": "Stripe unavailable; nothing was written"}}
OWNED = {**ERRORS, 404: {"description": "No subscription"}, 409: {"description": "Not possible in this state"}}


@router.get("/v1/plans", response_model=PlansOut)
async def list_plans(book: PlanBookDep) -> PlansOut:
    """The subscription plans: a monthly and/or yearly price each (minor units), credits per period, features."""
    return PlansOut(data=[PlanOut.of(p) for p in book.ranked()])


@router.post("/v1/subscriptions/checkout", response_model=SubscriptionCheckoutOut,
             responses={**ERRORS, 409: {"description": "Already subscribed"}})
async def subscription_checkout(body: SubscriptionCheckoutIn, principal: CurrentUser, session: SessionDep,
                                client: StripeDep, settings: SettingsDep, book: PlanBookDep, prices: PlanPricesDep,
                                catalog: CatalogDep) -> SubscriptionCheckoutOut:
    """Subscribe through Stripe Checkout; send the user to ``checkout_url``. Credits arrive with each paid invoice."""
    started = await service.start_checkout(
        session, client, settings=settings, book=book, prices=prices, catalog=catalog, principal=principal,
        plan_id=body.plan_id, interval=body.interval, success_url=body.success_url, cancel_url=body.cancel_url,
        locale=body.locale)
    return SubscriptionCheckoutOut(session_id=started.session_id, checkout_url=started.checkout_url)


@router.get("/v1/subscription", response_model=SubscriptionOut, responses=ERRORS)
async def read_subscription(principal: CurrentUser, session: SessionDep, book: PlanBookDep) -> SubscriptionOut:
    """The caller's subscription; ``status: "none"`` (other fields null) when there is none."""
    row = await mirror.current(session, principal.user_id)
    return SubscriptionOut.model_validate(service.view(row, book))


@router.post("/v1/subscription/change", response_model=SubscriptionOut, responses=OWNED)
async def change_subscription(body: ChangeIn, principal: CurrentUser, db: DatabaseDep, client: StripeDep,
                              book: PlanBookDep, prices: PlanPricesDep) -> SubscriptionOut:
    """Upgrade now (prorated invoice, prorated extra credits) or downgrade at the end of the period."""
    # DatabaseDep: the service runs two transactions of its own, with Stripe's call between them.
    row = await service.change_plan(db, client, book=book, prices=prices, principal=principal, plan_id=body.plan_id,
                                    interval=body.interval)
    return SubscriptionOut.model_validate(service.view(row, book))


@router.post("/v1/subscription/cancel", response_model=SubscriptionOut, responses=OWNED)
async def cancel_subscription(principal: CurrentUser, session: SessionDep, client: StripeDep, book: PlanBookDep,
                              body: CancelIn | None = None) -> SubscriptionOut:
    """Cancel at the end of the period (access until then), or ``{"immediately": true}`` to end it now."""
    row = await service.cancel(session, client, book=book, principal=principal,
                               immediately=bool(body and body.immediately))
    return SubscriptionOut.model_validate(service.view(row, book))


@router.post("/v1/subscription/resume", response_model=SubscriptionOut, responses=OWNED)
async def resume_subscription(principal: CurrentUser, session: SessionDep, client: StripeDep,
                              book: PlanBookDep) -> SubscriptionOut:
    """Undo a cancellation at period end, or resume a paused subscription."""
    row = await service.resume(session, client, book=book, principal=principal)
    return SubscriptionOut.model_validate(service.view(row, book))


@router.post("/v1/portal", response_model=PortalOut,
             responses={**ERRORS, 503: {"description": "Stripe or its billing portal unavailable"}})
async def open_portal(principal: CurrentUser, session: SessionDep, client: StripeDep,
                      settings: SettingsDep) -> PortalOut:
    """A Stripe billing portal session (update the card, switch plan, cancel, invoices); returns to /account."""
    url = await service.portal_url(session, client, settings=settings, principal=principal)
    return PortalOut(url=url)


@router.get("/billing/portal/{token}", include_in_schema=False)
async def portal_from_email(token: str, client: StripeDep, settings: SettingsDep) -> RedirectResponse:
    """The link in billing emails: signed, valid 14 days, opens a fresh portal session for its customer."""
    customer = billing.customer_from_link(settings, token)
    if customer is None:
        raise NotFound("This link has expired; sign in to manage billing.")
    url = await service.portal_url_for_customer(client, settings, customer)
    return RedirectResponse(url, status_code=303)
