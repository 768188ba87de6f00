"""``GET /v1/catalog``, and the catalog/price book that other domains reach through the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request

from .schemas import CatalogOut
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


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PriceBookDep = Annotated[PriceBook, Depends(get_price_book)]


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
                app.state.price_book.remember(pack, result.prices[pack.lookup_key])
    yield


router = APIRouter(tags=["catalog"], lifespan=catalog_lifespan)


@router.get("/v1/catalog", response_model=CatalogOut)
async def read_catalog(catalog: CatalogDep) -> CatalogOut:
    """The packs for sale (and plans). Prices are in minor units; buy a pack by its id."""
    return CatalogOut.of(catalog)
