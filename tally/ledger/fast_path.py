"""The credits API's hot routes answered by a small ASGI layer instead of FastAPI's routing and dependencies.

A spend (or a hold, or a capture) is one statement shared with its neighbours (``tally.ledger.group_commit``);
what remained was the HTTP layer's Python, ~0.7 ms of CPU per spend on the development VM, about a fifth of it
in FastAPI's routing, dependency solving and validation (bench/spend.py). This layer is the innermost
middleware, like the webhook receiver's (``tally.webhooks.receiver``): the request id, log line and metrics,
the security headers, the body-size limit and the rate limiter all still apply. For the routes it serves it
calls the very endpoint functions of ``tally.ledger.routes`` with the same inputs FastAPI would give them:
the caller from ``tally.auth.deps.authenticate``, the body validated by the same model, the answer serialised
by the route's own response field with the route's own status code. Only the well-formed request takes this
path: anything FastAPI would refuse (no JSON content type, a body that does not validate, no valid
credentials, a malformed hold id) is handed to FastAPI, body included, so every error is FastAPI's own answer.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth.deps import authenticate
from ..auth.service import Principal
from ..errors import TallyError
from . import routes
from .schemas import CaptureIn, HoldIn, SpendIn

HOLD_ID = pydantic.TypeAdapter(routes.HoldId)  # the route's own constraints on the path parameter
_JSON = b"application/json"


class HandToFastAPI(Exception):
    """The request is not for this path (or not well-formed): FastAPI answers it."""


@dataclass(frozen=True)
class Call:
    request: Request
    principal: Principal
    body: bytes
    path_params: dict[str, str]
    response: Response  # the endpoint may set its status (a hold's replay answers 200)


def _model(model: type[pydantic.BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except pydantic.ValidationError:
        raise HandToFastAPI from None


async def _spend(call: Call) -> Any:
    return await routes.spend(_model(SpendIn, call.body), call.principal, call.request)


async def _hold(call: Call) -> Any:
    return await routes.create_hold(_model(HoldIn, call.body), call.principal, call.request, call.response)


async def _capture(call: Call) -> Any:
    body = _model(CaptureIn, call.body) if call.body.strip() else None
    return await routes.capture_hold(call.path_params["hold_id"], call.principal, call.request, body)


async def _release(call: Call) -> Any:
    return await routes.release_hold(call.path_params["hold_id"], call.principal, call.request)


Handler = Callable[[Call], Awaitable[Any]]
# endpoint → how to call it; the path, status code and response field come from its APIRoute.
HANDLERS: dict[Callable[..., Any], Handler] = {routes.spend: _spend, routes.create_hold: _hold,
                                               routes.capture_hold: _capture, routes.release_hold: _release}


@dataclass(frozen=True)
class ServedRoute:
    """One route served here; ``path`` is what the request log and metrics read from ``scope["route"]``."""

    path: str
    pattern: re.Pattern[str]
    route: APIRoute
    handler: Handler

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None:
            return None
        params = found.groupdict()
        if "hold_id" in params:
            try:
                HOLD_ID.validate_python(params["hold_id"])
            except pydantic.ValidationError:
                raise HandToFastAPI from None  # FastAPI's 400 for a malformed id
        return params


class CreditsFastPath:
    def __init__(self, app: ASGIApp, *, tally: Any) -> None:
        self.app = app
        self.tally = tally  # the FastAPI app: its routes and state
        self._served: list[ServedRoute] | None = None

    def served(self) -> list[ServedRoute]:
        """The POST routes of ``HANDLERS``, found once among the app's routes."""
        if self._served is None:
            self._served = [
                ServedRoute(context.path, compile_path(context.path)[0], route, HANDLERS[route.endpoint])
                for context in iter_route_contexts(self.tally.routes)
                if isinstance(route := context.original_route, APIRoute) and route.endpoint in HANDLERS
                and "POST" in route.methods and context.path]
        return self._served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/v1/credits/"):
            await self.app(scope, receive, send)
            return
        body: bytes | None = None
        try:
            served, params = self._route(scope)
            body = await _read_body(receive)
            status, payload = await self._answer(scope, served, params, body)
        except HandToFastAPI:
            await self.app(scope, receive if body is None else _replaying(body, receive), send)
            return
        except TallyError as exc:
            status, payload = exc.status, orjson.dumps(exc.body())
            headers = exc.headers or {}
            await _send(send, status, payload, [(k.lower().encode(), v.encode()) for k, v in headers.items()])
            return
        await _send(send, status, payload, [])

    def _route(self, scope: Scope) -> tuple[ServedRoute, dict[str, str]]:
        if not any(name == b"content-type" and value.split(b";")[0].strip().lower() == _JSON
                   for name, value in scope["headers"]):
            raise HandToFastAPI
        for served in self.served():
            params = served.match(scope["path"])
            if params is not None:
                scope["route"] = served  # the request log and metrics read its path, as FastAPI's route's
                scope["path_params"] = params
                return served, params
        raise HandToFastAPI

    @staticmethod
    async def _answer(scope: Scope, served: ServedRoute, params: dict[str, str], body: bytes) -> tuple[int, bytes]:
        request = Request(scope)
        try:
            principal = await authenticate(request)
        except TallyError:
            raise HandToFastAPI from None  # FastAPI's own 401/403, with its headers
        response = Response()
        response.status_code = None  # type: ignore[assignment]  # as FastAPI's sub-response: unset
        result = await served.handler(Call(request, principal, body, params, response))
        field = served.route.response_field
        assert field is not None
        value, errors = field.validate(result, {}, loc=("response",))
        assert not errors, errors
        return response.status_code or served.route.status_code or 200, field.serialize_json(value, by_alias=True)


async def _read_body(receive: Receive) -> bytes:
    """The whole body (``BodySizeLimit``, outside, refuses one over the limit: then this sees a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise TallyError("The client went away before the body was read.")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for FastAPI after this layer read the body: that body first, then the real ``receive``."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
