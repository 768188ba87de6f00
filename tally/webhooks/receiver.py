"""The webhook receiver's fast path: Stripe's deliveries answered by a small ASGI layer instead of the whole stack.

A delivery needs four things: the body, the signature check, one INSERT into the inbox and a 200. Through
FastAPI it also paid for routing and dependency solving, which with the middleware stack was about half of the
API's CPU per event (bench/webhooks.py), on the path that Stripe bursts at. This layer is the innermost
middleware: the request log and metrics, the security headers, the body-size limit and the rate limiter's
exemption of webhook routes all still apply, and it sends the same answers as the routes it shadows
(``receive_stripe_webhook`` and its compatibility aliases, which stay registered for the OpenAPI schema and for
any other method): ``{"received": true}``, or Tally's error shape with 400 / 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TallyError
from .signature import SIGNATURE_HEADER, parse_event, verify

RECEIVED = orjson.dumps({"received": True})
_SIGNATURE = SIGNATURE_HEADER.encode()


@dataclass(frozen=True)
class ServedRoute:
    """What the request log and metrics read from ``scope["route"]``: the path template."""

    path: str


class WebhookReceiver:
    def __init__(self, app: ASGIApp, *, tally: Any) -> None:
        self.app = app
        self.tally = tally  # the FastAPI app: its state holds the inbox and the services
        self._routes: dict[str, ServedRoute] | None = None

    def routes(self) -> dict[str, ServedRoute]:
        """The paths served here, found once (``routes.receiver_routes``)."""
        if self._routes is None:
            from .routes import receiver_routes

            self._routes = {c.path: ServedRoute(c.path) for c in receiver_routes(self.tally.routes)}
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes().get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the request log and metrics name the route as FastAPI would
        try:
            await self._receive(scope, receive)
        except TallyError as exc:
            await self._answer(send, exc.status, orjson.dumps(exc.body()))
            return
        await self._answer(send, 200, RECEIVED)

    async def _receive(self, scope: Scope, receive: Receive) -> None:
        signature = next((value.decode("latin-1") for name, value in scope["headers"] if name == _SIGNATURE), None)
        body = await self._body(receive)
        state = self.tally.state
        text = verify(body, signature, state.services.webhook_secrets)
        await state.inbox.store(parse_event(text, live_mode=state.settings.live_mode))

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        """The whole body (``BodySizeLimit``, outside, refuses one over the limit: then this sees a disconnect)."""
        chunks: list[bytes] = []
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise TallyError("The client went away before the body was read.")
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
