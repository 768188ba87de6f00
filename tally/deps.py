"""What a route needs, as FastAPI dependencies: ``SessionDep``, ``DatabaseDep``, ``StripeDep``, ``SettingsDep``,
``ServicesDep``, the catalog and plans, ``TokenVerifierDep``, ``MandateDep``, and the caller (``CurrentUser``, ``AdminUser``,
from ``tally.auth.deps``). Routes import them from here rather than read ``request.app.state`` (the credits
routes still hand it to ``tally.ledger.group_commit.groups_of``, whose committers it keeps).

``tally.app`` puts on ``app.state`` what these read (``install_state``); the ``…_of(app)`` functions are the
same reads as plain calls, for code that is not a route's signature: a lifespan, a helper shared by routes,
and the credits fast path, which calls its endpoints without FastAPI's dependency solving.

``SessionDep`` is one transaction around the whole route, committed once the answer is built and before it is
sent (a failed commit is the route's error), rolled back if the route raises. A route takes ``DatabaseDep``
and opens its transactions itself when that is not its shape: a route that raises after committing (a declined
payment commits the failed order first), a route whose service runs several transactions (a plan change, with
Stripe's call between them), or a route whose route class renders its errors itself (pages, the ``/admin``
dashboard, the ``/api/stripe`` family): the exception never reaches the dependency there, so a session it
held would commit work the route did not finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from .auth.deps import AdminUser, CurrentUser, token_verifier_of
from .auth.service import TokenVerifier
from .catalog.service import Catalog, PriceBook, load_catalog
from .config import Settings
from .db import Database
from .observability.metrics import HttpMetrics
from .orders.intents import Mandate
from .services import Services
from .subscriptions.plans import PlanBook, PlanPrices, plan_book
from .stripe_gateway import StripeGateway

__all__ = ["AdminUser", "CatalogDep", "CurrentUser", "DatabaseDep", "MandateDep", "PlanBookDep", "PlanPricesDep", "PriceBookDep",
           "ServicesDep", "SessionDep", "SettingsDep", "StripeDep", "TokenVerifierDep", "catalog_of",
           "database_of", "http_metrics_of", "install_state", "plan_book_of", "plan_prices_of", "price_book_of",
           "services_of", "settings_of", "start_catalog", "stripe_of"]


def install_state(app: Starlette, services: Services) -> None:
    """Everything ``app.state`` holds for the routes, set once when the app is made. The catalog is loaded at
    start-up (``start_catalog``); the job app and the webhook inbox arrive with the worker (``tally.app``)."""
    state = app.state
    state.services = services
    # The same objects under their own names, as the webhook receiver and the credits fast path read them.
    state.settings, state.db, state.stripe = services.settings, services.db, services.stripe
    state.token_verifier = TokenVerifier(services.settings)
    state.catalog = None
    state.price_book = PriceBook()
    state.plan_prices = PlanPrices()
    state.http_metrics = HttpMetrics()


# -- plain reads -----------------------------------------------------------------------------------
def services_of(app: Starlette) -> Services:
    services: Services = app.state.services
    return services


def settings_of(app: Starlette) -> Settings:
    return services_of(app).settings


def database_of(app: Starlette) -> Database:
    return services_of(app).db


def stripe_of(app: Starlette) -> StripeGateway:
    return services_of(app).stripe


def start_catalog(app: Starlette) -> tuple[Catalog, PriceBook]:
    """Load the catalog afresh, with an empty price book (the start-up's; a broken file raises here)."""
    app.state.catalog = catalog = load_catalog(settings_of(app).catalog_path)
    app.state.price_book = prices = PriceBook()
    return catalog, prices


def catalog_of(app: Starlette) -> Catalog:
    """The catalog loaded at start-up, or now for an app driven without its lifespan (an in-process client)."""
    catalog: Catalog | None = app.state.catalog
    return catalog if catalog is not None else start_catalog(app)[0]


def price_book_of(app: Starlette) -> PriceBook:
    prices: PriceBook = app.state.price_book
    return prices


def plan_book_of(app: Starlette) -> PlanBook:
    """The plans (read once per process)."""
    return plan_book(settings_of(app))


def plan_prices_of(app: Starlette) -> PlanPrices:
    prices: PlanPrices = app.state.plan_prices
    return prices


def http_metrics_of(app: Starlette) -> HttpMetrics:
    metrics: HttpMetrics = app.state.http_metrics
    return metrics


# -- dependencies ----------------------------------------------------------------------------------
# All async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request for a lookup.
async def _services(request: Request) -> Services:
    return services_of(request.app)


async def _settings(request: Request) -> Settings:
    return services_of(request.app).settings


async def _database(request: Request) -> Database:
    return services_of(request.app).db


async def _stripe(request: Request) -> StripeGateway:
    return services_of(request.app).stripe


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with services_of(request.app).db.transaction() as session:
        yield session


async def _token_verifier(request: Request) -> TokenVerifier:
    return token_verifier_of(request.app)


async def _catalog(request: Request) -> Catalog:
    return catalog_of(request.app)


async def _price_book(request: Request) -> PriceBook:
    return price_book_of(request.app)


async def _plan_book(request: Request) -> PlanBook:
    return plan_book_of(request.app)


async def _plan_prices(request: Request) -> PlanPrices:
    return plan_prices_of(request.app)


async def _mandate(request: Request) -> Mandate:
    return Mandate(ip_address=request.client.host if request.client else "0.0.0.0",
                   user_agent=request.headers.get("user-agent", "unknown")[:500])


ServicesDep = Annotated[Services, Depends(_services)]
SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
StripeDep = Annotated[StripeGateway, Depends(_stripe)]
# scope="function": the transaction ends when the route returns, before the answer is sent (see above).
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
TokenVerifierDep = Annotated[TokenVerifier, Depends(_token_verifier)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
PriceBookDep = Annotated[PriceBook, Depends(_price_book)]
PlanBookDep = Annotated[PlanBook, Depends(_plan_book)]
PlanPricesDep = Annotated[PlanPrices, Depends(_plan_prices)]
# Who is accepting a bank-debit mandate when an order is confirmed from the server: the caller's address and agent.
MandateDep = Annotated[Mandate, Depends(_mandate)]
