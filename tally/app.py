"""The FastAPI application: wires settings, database, Stripe client, auth and each domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from .admin.routes import router as admin_router
from .auth.routes import router as auth_router
from .catalog.routes import router as catalog_router
from .compat.routes import routers as compat_routers
from .config import Settings
from .deps import install_state
from .doctor.routes import router as doctor_router
from .email.routes import router as email_router
from .errors import install_error_handlers
from .fast_route import FastRoutes
from .invoices.routes import router as invoices_router
from .ledger.operator_routes import router as operator_credits_router
from .ledger.routes import router as credits_router
from .limits import BodySizeLimit
from .observability.routes import install_observability
from .orders.routes import router as orders_router
from .pages.assets import mount_assets
from .pages.routes import router as pages_router
from .price_changes.routes import router as price_changes_router
from .promotions.routes import router as promotions_router
from .security import install_headers, install_rate_limits
from .services import Services
from .stripe_gateway import close_client
from .subscriptions.routes import router as subscriptions_router
from .tax.routes import router as tax_router
from .webhooks.dispatch import load_handlers
from .webhooks.routes import admin_router as webhook_admin_router
from .webhooks.routes import router as webhook_router
from .worker import WorkerRunner


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    load_handlers()  # a handler module that cannot be imported stops the API here (HandlerModuleError)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = WorkerRunner(services)
        app.state.jobs = runner.job_app
        app.state.inbox = runner.inbox  # the webhook receiver (tally.webhooks.inbox)
        await runner.start(run_worker=services.run_worker)
        try:
            yield
        finally:
            await runner.stop()
            await services.db.dispose()
            await close_client(services.stripe)

    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from Tally itself (assets from
    # the fastapi-offline package, under /static-offline-docs), so they work offline and behind a strict CSP.
    app = FastAPIOffline(title="Tally", version="0.1.0", lifespan=lifespan,
                         description="Credits and subscriptions through Stripe, with an exactly-once ledger.")
    install_state(app, services)  # what routes reach through tally.deps
    install_error_handlers(app)
    # Innermost: the routes declared fast (the webhook receiver, spends, holds) skip FastAPI's routing and
    # dependencies, not the middlewares added below.
    app.add_middleware(FastRoutes, tally=app)
    app.state.rate_limiter = install_rate_limits(app, settings)  # inside CORS: a 429 keeps the CORS headers
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type",
                                                                                   "Idempotency-Key"])
    install_headers(app, settings)  # outermost: every response gets the security headers
    install_observability(app, settings)  # request id, JSON log line and metrics for every response
    for router in _routers(settings):
        app.include_router(router)
    mount_assets(app)  # the pages' CSS and JS, served by Tally itself (no CDN: works offline)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "mode": "sandbox" if settings.sandbox_mode else "stripe"}

    return app


def _routers(settings: Settings) -> list[APIRouter]:
    routers = [auth_router, webhook_router, webhook_admin_router]
    # tax: start-up only (the sandbox's Stripe Tax settings)
    routers += [catalog_router, orders_router, credits_router, operator_credits_router, invoices_router, tax_router]
    routers += [subscriptions_router, email_router]  # plans, subscription lifecycle, portal; /outbox
    if settings.compat_routes:  # drop-in paths for existing frontends (/api/payment, /api/stripe, ...)
        routers += compat_routers()
    routers.append(doctor_router)  # /admin/health(.json): the doctor's report (before /admin's own routes)
    routers += [promotions_router, price_changes_router]  # /admin/promotions, /admin/price-changes (before /admin)
    routers.append(admin_router)  # the operator dashboard at /admin (API key or admin JWT)
    routers.append(pages_router)  # the server-rendered pages at / (cookie session + CSRF)
    return routers
