"""``GET /metrics`` (Prometheus text format) and ``install_observability``, which create_app calls once."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..auth.deps import bearer_token
from ..config import Settings
from ..deps import SessionDep, SettingsDep, http_metrics_of
from ..errors import Unauthenticated
from .logging import configure_logging, log_format
from .metrics import database_families, render
from .middleware import ObservabilityMiddleware

router = APIRouter(tags=["operations"])


def _may_scrape(request: Request, settings: Settings) -> bool:
    """The metrics token or the API key as a bearer token; with neither configured, open in sandbox mode only
    (payment counts are business data)."""
    keys = [k for k in (settings.metrics_token, settings.api_key) if k]
    if not keys:
        return settings.sandbox_mode
    token = bearer_token(request) or ""
    return any(hmac.compare_digest(token.encode(), key.encode()) for key in keys)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep, session: SessionDep) -> Response:
    if not _may_scrape(request, settings):
        raise Unauthenticated("Send 'Authorization: Bearer <TALLY_METRICS_TOKEN or TALLY_API_KEY>'.",
                              headers={"WWW-Authenticate": "Bearer"})
    families = await database_families(session)
    body = http_metrics_of(request.app).exposition() + render(families)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def configure_logs(settings: Settings) -> None:
    fmt = log_format(settings.log_format)
    if fmt != "plain":
        configure_logging(settings.log_level, fmt=fmt)


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Logs (JSON, or readable lines on a terminal; left alone with ``TALLY_LOG_FORMAT=plain``), the request
    middleware and ``/metrics``. Call it after the other middlewares so that it is the outermost one and sees
    every response, 413s and CORS included."""
    configure_logs(settings)
    app.add_middleware(ObservabilityMiddleware, metrics=http_metrics_of(app))
    app.include_router(router)
