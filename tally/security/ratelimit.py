"""Rate limits on every state-changing request, with the ``limits`` library.

Every POST/PUT/PATCH/DELETE (the JSON API, the compatibility routes, ``/dev/login`` and the pages' forms)
counts against two buckets: the caller's user (from the verified bearer token or the pages' session cookie)
and the client's IP address. Sign-in (``/dev/login``, ``POST /signin``, and the admin dashboard's
``POST /admin/login``, which takes the API key) also counts against tighter login buckets: one per IP and one
per account signed in to (the ``user_id`` named, or the one admin), so guesses spread over many addresses are
limited too. A server holding ``TALLY_API_KEY`` acts for many users from one address, so its requests count
against the named user (``Tally-User-Id``) and one shared API-key bucket instead of the IP.
The Stripe webhook receiver is never limited: Stripe delivers in bursts and retries what we refuse.

Over a limit: 429 with ``Retry-After`` (seconds until the moving window frees a request) in Tally's error
shape, or as an HTML page for the pages' forms and browser form posts. Counts live in memory (one process)
or in Redis when ``TALLY_REDIS_URL`` is set, so several API nodes share them. If Redis cannot be reached the
request is let through and the failure logged: a limiter outage must not take payments down (``tally audit``
checks Redis).

The client IP is the ASGI ``client``: behind a reverse proxy run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` so that it is the real client rather than the proxy.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson
from fastapi.routing import iter_route_contexts
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth.deps import USER_HEADER, bearer_token, token_verifier_of
from ..auth.service import TokenVerifier, principal_from_claims
from ..config import Settings
from ..errors import Unauthenticated

log = logging.getLogger("tally.security")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATHS = frozenset({"/dev/login", "/signin", "/admin/login"})  # the last one takes the API key
# The compatibility family whose clients read ``success`` (see tally.compat.routes).
FAMILY_PREFIXES = ("/api/stripe/", "/api/business/")


@dataclass(frozen=True)
class Limits:
    user: list[RateLimitItem]
    ip: list[RateLimitItem]
    api_key: list[RateLimitItem]
    login: list[RateLimitItem]

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(user=parse_many(settings.rate_limit_user), ip=parse_many(settings.rate_limit_ip),
                   api_key=parse_many(settings.rate_limit_api_key), login=parse_many(settings.rate_limit_login))


def make_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        # redis-py rather than limits' default coredis client: one Redis client library in the deployment.
        return RedisStorage("async+" + settings.redis_url, implementation="redispy", wrap_exceptions=True,
                            key_prefix="tally-limits")
    return MemoryStorage(wrap_exceptions=True)


@dataclass(frozen=True)
class Refusal:
    retry_after: int
    what: str  # which bucket ran out, in words


class RateLimiter:
    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.limits = Limits.from_settings(settings)
        self.storage = storage or make_storage(settings)
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, buckets: list[tuple[list[RateLimitItem], str, str]]) -> Refusal | None:
        """Count one request in each bucket (items, key, description); the first one over its limit."""
        for items, key, what in buckets:
            for item in items:
                if not await self.strategy.hit(item, key):
                    stats = await self.strategy.get_window_stats(item, key)
                    return Refusal(max(1, math.ceil(stats.reset_time - time.time())), f"{what} ({item})")
        return None

    async def healthy(self) -> bool:
        return await self.storage.check()


@dataclass(frozen=True)
class Caller:
    user_id: str | None
    via_api_key: bool


async def identify(request: Request, verifier: TokenVerifier) -> Caller:
    """Who is calling, as far as a verified credential says; an unverifiable one counts as nobody (the
    route answers 401 after the IP bucket has counted the attempt)."""
    token = bearer_token(request)
    if token is not None and verifier.is_api_key(token):
        return Caller(request.headers.get(USER_HEADER) or None, True)
    if token is None:
        token = _page_session_token(request)
    if token is None:
        return Caller(None, False)
    try:
        return Caller(principal_from_claims(await verifier.verify(token)).user_id, False)
    except Unauthenticated:
        return Caller(None, False)


def _page_session_token(request: Request) -> str | None:
    from ..pages.session import COOKIE, codec

    cookie = request.cookies.get(COOKIE)
    return codec(request).loads(cookie).jwt if cookie else None


@dataclass(frozen=True)
class RouteTable:
    """Found once from the app's own routes, so new webhook aliases and new pages are covered as added."""

    exempt: tuple[re.Pattern[str], ...]  # the Stripe webhook receiver, wherever it is mounted
    pages: tuple[re.Pattern[str], ...]  # routes that answer HTML

    @classmethod
    def of(cls, app: Starlette) -> RouteTable:
        from ..pages.web import PageRoute
        from ..webhooks.routes import receiver_routes

        routes = app.routes
        exempt = tuple(c.path_regex for c in receiver_routes(routes))
        pages = tuple(c.path_regex for c in iter_route_contexts(routes) if isinstance(c.original_route, PageRoute))
        return cls(exempt, pages)

    def is_exempt(self, path: str) -> bool:
        return any(p.match(path) for p in self.exempt)

    def is_page(self, path: str) -> bool:
        return any(p.match(path) for p in self.pages)


async def login_account(path: str, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """The account a sign-in is for, so that guesses spread over many addresses are limited too: the admin
    dashboard has one (it takes the API key); the demo sign-ins name a ``user_id`` in their JSON or form
    body. The body is read here and handed on unchanged (``BodySizeLimit``, outside, bounds it)."""
    if path == "/admin/login":
        return "admin", receive
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"").decode("latin-1")
    try:
        if content_type.startswith("application/json"):
            fields = orjson.loads(body)
            user_id = fields.get("user_id") if isinstance(fields, dict) else None
        else:
            user_id = (parse_qs(body.decode(), max_num_fields=20).get("user_id") or [None])[0]
    except (ValueError, UnicodeDecodeError):  # the route answers the malformed body
        user_id = None
    if not isinstance(user_id, str) or not user_id.strip():
        return None, replay
    return "user:" + user_id.strip()[:255], replay


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter
        self._routes: RouteTable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        if self._routes is None:
            self._routes = RouteTable.of(scope["app"])
        path: str = scope["path"]
        if self._routes.is_exempt(path):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        ip = scope["client"][0] if scope.get("client") else "unknown"
        caller = await identify(request, token_verifier_of(request.app))
        limits = self.limiter.limits
        buckets: list[tuple[list[RateLimitItem], str, str]] = []
        if path in LOGIN_PATHS:
            buckets.append((limits.login, f"login:ip:{ip}", "sign-ins from this address"))
            account, receive = await login_account(path, scope, receive)
            if account is not None:
                buckets.append((limits.login, f"login:account:{account}", "sign-ins to this account"))
        if caller.via_api_key:
            buckets.append((limits.api_key, "api-key", "requests made with the API key"))
        else:
            buckets.append((limits.ip, f"ip:{ip}", "requests from this address"))
        if caller.user_id is not None:
            buckets.append((limits.user, f"user:{caller.user_id}", "requests for this user"))
        try:
            refusal = await self.limiter.hit(buckets)
        except StorageError as exc:
            log.error("rate limit storage unavailable; request let through: %s", exc.storage_error)
            refusal = None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        # An HTML page for the pages' forms and for any browser form post (the admin dashboard's too).
        page = self._routes.is_page(path) or "text/html" in request.headers.get("accept", "")
        response = self._refuse(request, refusal, page=page)
        await response(scope, receive, send)

    @staticmethod
    def _refuse(request: Request, refusal: Refusal, *, page: bool) -> Response:
        headers = {"Retry-After": str(refusal.retry_after)}
        message = f"Too many {refusal.what}. Retry in {refusal.retry_after} seconds."
        if page:
            from ..pages.web import PageError, error_page, finish

            response = finish(request, error_page(request, PageError(
                429, "Too many attempts", f"Please wait {refusal.retry_after} seconds, then try again.")))
            response.headers.update(headers)
            return response
        body: dict[str, object] = {"error": {"type": "rate_limited", "message": message, "param": None}}
        if request.url.path.startswith(FAMILY_PREFIXES):
            body = {"success": False, **body}  # that family's clients test ``success`` before error.message
        return JSONResponse(body, status_code=429, headers=headers)


def install(app: Starlette, settings: Settings) -> RateLimiter | None:
    """Add the middleware (unless TALLY_RATE_LIMITS=false); the limiter, for ``tally.app`` to keep."""
    if not settings.rate_limits:
        return None
    limiter = RateLimiter(settings)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    return limiter
