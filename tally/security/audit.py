"""``tally audit``: the P0 security checklist, checked against the configuration Tally would run with (the
same environment and ``.env`` as ``tally serve``) and the app it would build from it.

Each item passes or fails with one line saying why; any failure makes the command exit non-zero, so a
deploy pipeline can run it before switching traffic.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from ..config import Settings
from .ratelimit import RateLimiter

# (environment variable, what it is, minimum length for a secret we generate ourselves)
SECRETS = [("STRIPE_SECRET_KEY", "Stripe secret key", 0), ("STRIPE_WEBHOOK_SECRET", "webhook signing secret", 0),
           ("TALLY_JWT_SECRET", "JWT signing secret", 32), ("TALLY_API_KEY", "API key", 32)]
STRIPE_KEY_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _secret_value(settings: Settings, env_name: str) -> str | None:
    field = next(n for n, f in Settings.model_fields.items() if f.alias == env_name)
    return getattr(settings, field)


def keys_from_environment(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    problems: list[str] = []
    found: list[str] = []
    for env_name, what, min_length in SECRETS:
        value = _secret_value(settings, env_name)
        if not value:
            continue
        found.append(env_name)
        if environ.get(env_name) != value:
            problems.append(f"{env_name} comes from a file (.env), not the process environment")
        if min_length and len(value) < min_length:
            problems.append(f"{env_name} is shorter than {min_length} characters")
    if not settings.jwt_secret and not settings.jwks_url:
        problems.append("neither TALLY_JWT_SECRET nor TALLY_JWKS_URL is set: sign-in tokens use the public "
                        "sandbox development secret" if settings.sandbox_mode else
                        "neither TALLY_JWT_SECRET nor TALLY_JWKS_URL is set: no user can sign in")
    if problems:
        return Check("Keys from the environment only", False, "; ".join(problems))
    return Check("Keys from the environment only", True,
                 f"{', '.join(found) or 'no secrets'} read from the process environment")


def live_test_separation(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    name = "Live and test mode separated"
    key = settings.stripe_secret_key
    if not key:
        return Check(name, True, "no Stripe key: offline sandbox, test mode only (no real money)")
    if not key.startswith(STRIPE_KEY_PREFIXES):
        return Check(name, False, "STRIPE_SECRET_KEY is not a Stripe secret or restricted key (sk_/rk_ live/test)")
    if settings.live_mode and settings.stripe_api_base:
        return Check(name, False, f"a LIVE key would be sent to STRIPE_API_BASE={settings.stripe_api_base}; "
                                  "unset it so live requests go to Stripe only")
    mode = "live" if settings.live_mode else "test"
    return Check(name, True, f"{mode}-mode key; webhook events of the other mode are refused (400)")


def webhook_secret_set(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    name = "Webhook signing secret set"
    if settings.sandbox_mode and not settings.stripe_webhook_secret:
        return Check(name, True, "sandbox mode: a generated secret kept in the data directory")
    secrets = [s.strip() for s in (settings.stripe_webhook_secret or "").split(",") if s.strip()]
    if not secrets:
        return Check(name, False, "STRIPE_WEBHOOK_SECRET is not set: every webhook is refused")
    if not all(s.startswith("whsec_") for s in secrets):
        return Check(name, False, "STRIPE_WEBHOOK_SECRET must be Stripe's whsec_… signing secret(s)")
    rolling = " (two while rolling)" if len(secrets) > 1 else ""
    return Check(name, True, f"{len(secrets)} whsec_ secret(s){rolling}; signatures older than 5 minutes refused")


def https_public_url(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    url = urlsplit(settings.public_url)
    if url.scheme == "https" and url.hostname:
        return Check("HTTPS public URL", True, f"{settings.public_url}: Secure session cookie and HSTS")
    return Check("HTTPS public URL", False,
                 f"TALLY_PUBLIC_URL is {settings.public_url}: set the https:// address users reach")


def rate_limits_on(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    name = "Rate limits on"
    limiter = getattr(app.state, "rate_limiter", None)
    if not settings.rate_limits or limiter is None:
        return Check(name, False, "TALLY_RATE_LIMITS is off")
    where = "in memory (one process; set TALLY_REDIS_URL to share them between API nodes)"
    if settings.redis_url:
        if not asyncio.run(_storage_ok(limiter)):
            return Check(name, False, "TALLY_REDIS_URL is set but Redis does not answer: limits would be skipped")
        where = "in Redis, shared by every API node"
    return Check(name, True, f"user {settings.rate_limit_user}, IP {settings.rate_limit_ip}, login "
                             f"{settings.rate_limit_login} per IP; {where}")


async def _storage_ok(limiter: RateLimiter) -> bool:
    try:
        return bool(await limiter.healthy())
    except Exception:  # noqa: BLE001 — any failure to answer is "not healthy"
        return False


def _dependencies(dependant: Dependant) -> Iterable[Callable[..., object]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def csrf_on(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    from ..pages.web import PageRoute, csrf_protected

    unprotected, forms = [], 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, PageRoute) and MUTATING & (route.methods or set()):
            forms += 1
            if csrf_protected not in set(_dependencies(route.dependant)):
                unprotected.append(f"{sorted(route.methods)[0]} {context.path}")
    if unprotected:
        return Check("CSRF on", False, "page forms without the CSRF token check: " + ", ".join(unprotected))
    cookie = "Secure, " if urlsplit(settings.public_url).scheme == "https" else ""
    return Check("CSRF on", True, f"all {forms} page forms check the session's token; cookie {cookie}HttpOnly, "
                                  "SameSite=Lax; the API takes bearer tokens only")


def idempotency_keys_used(settings: Settings, environ: Mapping[str, str], app: FastAPI) -> Check:
    name = "Idempotency keys used"
    spend = next((c.original_route for c in iter_route_contexts(app.routes)
                  if c.path == "/v1/credits/spend" and isinstance(c.original_route, APIRoute)), None)
    body = spend.body_field if spend is not None else None
    model = getattr(getattr(body, "field_info", None), "annotation", None)
    fields = getattr(model, "model_fields", {})
    if "idempotency_key" not in fields or not fields["idempotency_key"].is_required():
        return Check(name, False, "POST /v1/credits/spend does not require idempotency_key")
    retries = getattr(app.state.stripe, "max_network_retries", None)  # the gateway's (StripeGateway)
    if retries is not None and retries < 1:
        return Check(name, False, "the Stripe client does not retry, so a timed-out write is never resent")
    return Check(name, True, "Stripe writes carry keys made from Tally's record ids (retried safely); "
                             "POST /v1/credits/spend requires idempotency_key")


CHECKS = [keys_from_environment, live_test_separation, webhook_secret_set, https_public_url, rate_limits_on,
          csrf_on, idempotency_keys_used]


def build_app(settings: Settings) -> FastAPI:
    """The app ``tally serve`` would build from these settings; nothing connects (no database, no Stripe)."""
    from ..app import create_app
    from ..services import Services
    from ..db import Database
    from ..stripe_gateway import SANDBOX_KEY, make_client

    services = Services(settings=settings, db=Database(settings.database_url or "postgresql+psycopg://audit@/none"),
                        stripe=make_client(settings.stripe_secret_key or SANDBOX_KEY, settings.stripe_api_base),
                        webhook_secrets=[s for s in (settings.stripe_webhook_secret or "").split(",") if s])
    return create_app(services)


def run(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Check]:
    environ = os.environ if environ is None else environ
    app = build_app(settings)
    return [check(settings, environ, app) for check in CHECKS]


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.detail}" for c in checks]
    failed = sum(not c.passed for c in checks)
    lines.append(f"{len(checks) - failed} of {len(checks)} P0 items pass" + (f"; {failed} FAIL" if failed else ""))
    return "\n".join(lines)
