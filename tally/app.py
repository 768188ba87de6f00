"""The FastAPI application: wires settings, database, Stripe client, auth and each domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import stripe
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from .auth.routes import router as auth_router
from .auth.service import TokenVerifier
from .config import Settings
from .db import Database
from .errors import install_error_handlers
from .limits import BodySizeLimit
from .security import install_headers, install_rate_limits
from .stripe_gateway import close_client


@dataclass
class Services:
    """What the app needs at run time, built by ``tally.runtime`` (or by tests)."""

    settings: Settings
    db: Database
    stripe: stripe.StripeClient
    webhook_secrets: list[str]  # signing secrets accepted on /v1/webhooks/stripe (two while rotating)
    run_worker: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def create_app(services: Services) -> FastAPI:
    from .webhooks.dispatch import load_handlers

    settings = services.settings
    load_handlers()  # a handler module that cannot be imported stops the API here (HandlerModuleError)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .worker import WorkerRunner

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
    app.state.settings = settings
    app.state.services = services
    app.state.db = services.db
    app.state.stripe = services.stripe
    app.state.token_verifier = TokenVerifier(settings)
    install_error_handlers(app)
    from .fast_route import FastRoutes

    # Innermost: the routes declared fast (the webhook receiver, spends, holds) skip FastAPI's routing and
    # dependencies, not the middlewares added below.
    app.add_middleware(FastRoutes, tally=app)
    install_rate_limits(app, settings)  # inside CORS: a 429 keeps the CORS headers
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type",
                                                                                   "Idempotency-Key"])
    install_headers(app, settings)  # outermost: every response gets the security headers
    from .observability.routes import install_observability

    install_observability(app, settings)  # request id, JSON log line and metrics for every response
    for router in _routers(settings):
        app.include_router(router)
    from .pages.assets import mount_assets

    mount_assets(app)  # the pages' CSS and JS, served by Tally itself (no CDN: works offline)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "mode": "sandbox" if settings.sandbox_mode else "stripe"}

    return app


def _routers(settings: Settings) -> list[Any]:
    routers: list[Any] = [auth_router]
    from .webhooks.routes import admin_router as webhook_admin_router
    from .webhooks.routes import router as webhook_router

    routers += [webhook_router, webhook_admin_router]
    from .catalog.routes import router as catalog_router
    from .invoices.routes import router as invoices_router
    from .ledger.operator_routes import router as operator_credits_router
    from .ledger.routes import router as credits_router
    from .orders.routes import router as orders_router
    from .tax.routes import router as tax_router  # start-up only: the sandbox's Stripe Tax settings

    routers += [catalog_router, orders_router, credits_router, operator_credits_router, invoices_router, tax_router]
    from .email.routes import router as email_router
    from .subscriptions.routes import router as subscriptions_router

    routers += [subscriptions_router, email_router]  # plans, subscription lifecycle, portal; /outbox
    if settings.compat_routes:  # drop-in paths for existing frontends (/api/payment, /api/stripe, ...)
        from .compat.routes import routers as compat_routers

        routers += compat_routers()
    from .doctor.routes import router as doctor_router

    routers.append(doctor_router)  # /admin/health(.json): the doctor's report (before /admin's own routes)
    from .admin.routes import router as admin_router
    from .price_changes.routes import router as price_changes_router
    from .promotions.routes import router as promotions_router

    routers += [promotions_router, price_changes_router]  # /admin/promotions, /admin/price-changes (before /admin)
    routers.append(admin_router)  # the operator dashboard at /admin (API key or admin JWT)
    from .pages.routes import router as pages_router

    routers.append(pages_router)  # the server-rendered pages at / (cookie session + CSRF)
    return routers
