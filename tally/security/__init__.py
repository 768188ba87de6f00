"""Security controls that span the whole app: rate limits, security headers, and the P0 audit."""

from __future__ import annotations

from fastapi import FastAPI

from ..config import Settings
from . import ratelimit
from .ratelimit import RateLimiter
from .headers import SecurityHeaders


def install_rate_limits(app: FastAPI, settings: Settings) -> RateLimiter | None:
    """Inner middleware: runs after CORS and the body size limit, so a 429 carries CORS headers. The limiter,
    or None with TALLY_RATE_LIMITS=false."""
    return ratelimit.install(app, settings)


def install_headers(app: FastAPI, settings: Settings) -> None:
    """Outermost middleware: every response, a 413 or 429 too, gets the headers."""
    app.add_middleware(SecurityHeaders, https=settings.public_url.lower().startswith("https://"))
