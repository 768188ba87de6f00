"""Security headers on every response, as a small ASGI middleware (a handful of constant headers; no
library needed).

The pages set their own strict policy (``tally.pages.web.SECURITY_HEADERS``: ``default-src 'self'``, no
inline script or style); this middleware keeps whatever a route set and fills in the rest:

- every response: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``, ``X-Frame-Options: DENY``, and
  ``Strict-Transport-Security`` when the public URL is https (browsers ignore it over plain http);
- other HTML (the ``/outbox`` developer page, the admin pages): the same strict policy as the pages unless
  the route set its own.
- the API docs (``/docs``, ``/redoc``, their assets served by Tally from the fastapi-offline package): a policy
  that allows nothing from elsewhere, with FastAPI's inline bootstrap script and Swagger UI's inline styles
  (ReDoc also runs a worker from a blob).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_CSP = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
            "object-src 'none'")
HSTS = "max-age=63072000; includeSubDomains"
DOCS_PREFIXES = ("/docs", "/redoc")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
            "object-src 'none'")

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(DOCS_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else HTML_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
