"""One ASGI middleware, outermost, for every HTTP request: a request id (the caller's ``X-Request-Id`` when it is
a sane token, else a new one) bound to every log line of the request and echoed in the response, the request
counted and timed by route template, and one ``request`` log line at the end."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import UNMATCHED, HttpMetrics

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")  # anything else is replaced: ids land in logs verbatim
# Path parameters worth putting on the request's log line (orders, Stripe sessions, intents, events).
_ID_PARAMS = ("order_id", "session_id", "event_id", "payment_intent_id", "invoice_id", "subscription_id")

log = structlog.stdlib.get_logger("tally.http")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1").strip()
            return candidate if _SANE_ID.match(candidate) else None
    return None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = str(scope.get("method", "GET"))
            self.metrics.observe(method, route, status, elapsed)
            ids: dict[str, Any] = {k: v for k, v in (scope.get("path_params") or {}).items() if k in _ID_PARAMS}
            log.info("request", method=method, route=route, path=scope.get("path"), status=status,
                     duration_ms=round(elapsed * 1000, 2), **ids)
            structlog.contextvars.clear_contextvars()
