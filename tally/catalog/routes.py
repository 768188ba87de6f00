"""``GET /v1/catalog``, ``GET /v1/payment-methods``, and loading the catalog at start-up (routes reach it
through ``tally.deps.CatalogDep``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query

from .. import currency as money
from ..deps import CatalogDep, PlanBookDep, settings_of, start_catalog, stripe_of
from ..errors import InvalidRequest
from .schemas import CatalogOut, PaymentMethodsOut
from .service import sync_to_stripe

log = logging.getLogger("tally.catalog")


@asynccontextmanager
async def catalog_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the catalog at start-up (a broken file stops the service with its message) and, in sandbox
    mode, sync it to the sandbox so the Products and Prices exist from the first second. With a real
    key, ``tally catalog sync`` is an explicit step; checkout syncs a missing pack on first use anyway."""
    catalog, prices = start_catalog(app)
    if settings_of(app).sandbox_mode:
        try:
            result = await sync_to_stripe(stripe_of(app), catalog)
        except Exception as exc:  # the sandbox may still be starting; checkout syncs on first use
            log.warning("catalog sync at start-up failed (%s); packs will be synced on first checkout", exc)
        else:
            for pack in catalog.packs.values():
                for code in pack.currencies:
                    prices.remember(pack, result.prices[pack.lookup_key_in(code)], code)
    yield


router = APIRouter(tags=["catalog"], lifespan=catalog_lifespan)


CurrencyQuery = Annotated[str | None, Query(min_length=3, max_length=3, description="ISO code, e.g. myr")]


def _currency(value: str) -> str:
    try:
        return money.normalize(value)
    except money.CurrencyError as exc:
        raise InvalidRequest(str(exc), param="currency") from None


@router.get("/v1/catalog", response_model=CatalogOut, responses={400: {"description": "Invalid currency"}})
async def read_catalog(catalog: CatalogDep, book: PlanBookDep, currency: CurrencyQuery = None) -> CatalogOut:
    """The packs for sale and the subscription plans (as ``GET /v1/plans`` lists them). Prices are in minor
    units; buy a pack by its id. With ``currency``, the packs and plans sold in that currency, at their price
    in it."""
    return CatalogOut.of(catalog, book, _currency(currency) if currency else None)


@router.get("/v1/payment-methods", response_model=PaymentMethodsOut,
            responses={400: {"description": "Missing or invalid currency"}})
async def read_payment_methods(catalog: CatalogDep,
                               currency: Annotated[str, Query(max_length=16)]) -> PaymentMethodsOut:
    """The payment method types an order in ``currency`` may use (``?currency=myr``)."""
    code = _currency(currency)
    return PaymentMethodsOut(currency=code, payment_method_types=catalog.payment_method_types(code),
                             recurring_payment_method_types=catalog.payment_method_types(code, recurring=True))
