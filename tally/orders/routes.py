"""``POST /v1/checkout`` and ``GET /v1/orders/{order_id or session_id}``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..auth.deps import CurrentUser
from ..catalog.routes import CatalogDep, PriceBookDep
from . import service
from .schemas import CheckoutIn, CheckoutOut, OrderOut

router = APIRouter(tags=["orders"])

ERRORS = {400: {"description": "Invalid request"}, 401: {"description": "Not signed in"},
          503: {"description": "Stripe unavailable; nothing was written"}}


@router.post("/v1/checkout", response_model=CheckoutOut, responses=ERRORS)
async def checkout(body: CheckoutIn, principal: CurrentUser, catalog: CatalogDep, prices: PriceBookDep,
                   request: Request) -> CheckoutOut:
    """Start buying a pack: a pending order and a Stripe Checkout Session; send the buyer to
    ``checkout_url``. The price is the catalog's; the client only names the pack."""
    async with request.app.state.db.transaction() as session:
        started = await service.create_checkout(
            session, request.app.state.stripe, settings=request.app.state.settings, catalog=catalog,
            prices=prices, principal=principal, pack_id=body.pack_id, success_url=body.success_url,
            cancel_url=body.cancel_url)
    return CheckoutOut(order_id=started.order_id, session_id=started.session_id, checkout_url=started.checkout_url)


@router.get("/v1/orders/{order_id}", response_model=OrderOut,
            responses={**ERRORS, 403: {"description": "Another user's order"}, 404: {"description": "Unknown"}})
async def read_order(order_id: str, principal: CurrentUser, request: Request) -> OrderOut:
    """An order by its id or its Checkout Session id (``cs_…``), to its owner. A pending order is
    checked with Stripe and fulfilled at once if paid."""
    async with request.app.state.db.transaction() as session:
        status = await service.get_order_status(session, request.app.state.stripe,
                                                settings=request.app.state.settings, principal=principal,
                                                order_or_session_id=order_id)
        return OrderOut.of(status.order, coins_added=status.coins_added, balance=status.balance,
                           invoice=status.invoice)
