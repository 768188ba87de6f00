"""``GET /v1/catalog``, ``GET /v1/payment-methods``, and the catalog/price book that other domains reach
through the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from .. import currency as money
from ..errors import InvalidRequest
from .schemas import CatalogOut, PaymentMethodsOut
from .service import Catalog, PriceBook, load_catalog, sync_to_stripe

log = logging.getLogger("tally.catalog")


def get_catalog(request: Request) -> Catalog:
    state = request.app.state
    catalog = getattr(state, "catalog", None)
    if catalog is None:
        catalog = state.catalog = load_catalog(state.settings.catalog_path)
    return catalog


def get_price_book(request: Request) -> PriceBook:
    book = getattr(request.app.state, "price_book", None)
    if book is None:
        book = request.app.state.price_book = PriceBook()
    return book


# Async wrappers: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request for a lookup.
async def _catalog(request: Request) -> Catalog:
    return get_catalog(request)


async def _price_book(request: Request) -> PriceBook:
    return get_price_book(request)


CatalogDep = Annotated[Catalog, Depends(_catalog)]
PriceBookDep = Annotated[PriceBook, Depends(_price_book)]


@asynccontextmanager
async def catalog_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the catalog at start-up (a broken file stops the service with its message) and, in sandbox
    mode, sync it to the sandbox so the Products and Prices exist from the first second. With a real
    key, ``tally catalog sync`` is an explicit step; checkout syncs a missing pack on first use anyway."""
    settings = app.state.settings
    app.state.catalog = load_catalog(settings.catalog_path)
    app.state.price_book = PriceBook()
    if settings.sandbox_mode:
        try:
            result = await sync_to_stripe(app.state.stripe, app.state.catalog)
        except Exception as exc:  # the sandbox may still be starting; checkout syncs on first use
            log.warning("catalog sync at start-up failed (%s); packs will be synced on first checkout", exc)
        else:
            for pack in app.state.catalog.packs.values():
                for code in pack.currencies:
                    app.state.price_book.remember(pack, result.prices[pack.lookup_key_in(code)], code)
    yield


router = APIRouter(tags=["catalog"], lifespan=catalog_lifespan)


CurrencyQuery = Annotated[str | None, Query(min_length=3, max_length=3, description="ISO code, e.g. myr")]


def _currency(value: str) -> str:
    try:
        return money.normalize(value)
    except money.CurrencyError as exc:
        raise InvalidRequest(str(exc), param="currency") from None


@router.get("/v1/catalog", response_model=CatalogOut, responses={400: {"description": "Invalid currency"}})
async def read_catalog(request: Request, catalog: CatalogDep, currency: CurrencyQuery = None) -> CatalogOut:
    """The packs for sale and the subscription plans (as ``GET /v1/plans`` lists them). Prices are in minor
    units; buy a pack by its id. With ``currency``, the packs and plans sold in that currency, at their price
    in it."""
    from ..subscriptions.plans import plan_book

    book = plan_book(request.app.state.settings)
    return CatalogOut.of(catalog, book, _currency(currency) if currency else None)


@router.get("/v1/payment-methods", response_model=PaymentMethodsOut,
            responses={400: {"description": "Missing or invalid currency"}})
async def read_payment_methods(catalog: CatalogDep,
                               currency: Annotated[str, Query(max_length=16)]) -> PaymentMethodsOut:
    """The payment method types an order in ``currency`` may use (``?currency=myr``)."""
    code = _currency(currency)
    return PaymentMethodsOut(currency=code, payment_method_types=catalog.payment_method_types(code),
                             recurring_payment_method_types=catalog.payment_method_types(code, recurring=True))
