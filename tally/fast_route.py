"""Routes declared fast: their well-formed requests skip FastAPI's routing, dependency solving and validation.

Stripe's deliveries and the credits API's spends, holds, captures and releases are the paths under load; for
them, FastAPI's routing (matching the path against every route of the app), its dependency solving and its
validation were about half of the API's CPU per request (``bench/webhooks.py``, ``bench/spend.py --extras``).
A route declared with ``fast_route(call)`` is still an ordinary ``APIRoute``: listed in the OpenAPI schema from
its own endpoint's signature, ``response_model`` and ``responses``, and served by FastAPI for anything ``call``
does not take. ``FastRoutes``, the innermost middleware (the request id, log line and metrics, the security
headers, the body-size limit and the rate limiter all still apply), finds these routes among the app's own, by
their class, and answers their requests itself: ``call`` runs the route's very endpoint with the inputs FastAPI
would give it (read from the request directly), and the answer is serialised by the route's own response field
with the route's own status code. A request ``call`` cannot read as well-formed (it raises ``HandToFastAPI``: a
body that does not validate, no valid credentials, ...) goes on to FastAPI, body included, so every refusal is
FastAPI's own answer. A ``TallyError`` is answered in Tally's error shape, as the app's error handler would.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import TallyError


Endpoint = Callable[..., Awaitable[Any]]


class HandToFastAPI(Exception):
    """The request is not well-formed for the direct call: FastAPI answers it."""


class FastCall:
    """What a ``call`` gets: the route's own endpoint, the request, its body (read already) and, made on first
    use, the sub-response the endpoint may set a status on (a hold's replay answers 200)."""

    __slots__ = ("endpoint", "route", "request", "body", "_response")

    def __init__(self, endpoint: Endpoint, route: APIRoute, request: Request, body: bytes) -> None:
        self.endpoint, self.route, self.request, self.body = endpoint, route, request, body
        self._response: Response | None = None

    @property
    def response(self) -> Response:
        if self._response is None:
            self._response = Response()
            self._response.status_code = None  # type: ignore[assignment]  # as FastAPI's sub-response: unset
        return self._response

    @property
    def status_code(self) -> int | None:
        """The status the endpoint set, if it did."""
        return self._response.status_code if self._response is not None else None

    def path_param(self, name: str) -> Any:
        """A path parameter validated as the route declares it (else FastAPI's own answer)."""
        field = next(f for f in self.route.dependant.path_params if f.alias == name)
        value, errors = field.validate(self.request.path_params.get(name), {}, loc=("path", name))
        if errors:
            raise HandToFastAPI
        return value


Call = Callable[[FastCall], Awaitable[Any]]


class FastRoute(APIRoute):
    """An ``APIRoute`` that ``FastRoutes`` serves; ``call`` says how to call its endpoint."""

    call: Call


def fast_route(call: Call, *, name: str) -> type[FastRoute]:
    """The route class for endpoints that ``call`` knows how to call:
    ``router.add_api_route(path, endpoint, route_class_override=fast_route(call, name=...), ...)``."""
    return type(name, (FastRoute,), {"call": staticmethod(call)})


def post(router: APIRouter, path: str, route_class: type[FastRoute], **options: Any) -> Callable[[Endpoint], Endpoint]:
    """``@router.post(path, **options)`` for a route of ``route_class`` (``fast_route``)."""
    def declare(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["POST"], route_class_override=route_class, **options)
        return endpoint

    return declare


@dataclass(frozen=True)
class _Served:
    path: str  # as mounted (what the request log and metrics name)
    pattern: re.Pattern[str]
    route: FastRoute
    status_code: int | None
    response_field: Any
    response_model: Any


class FastRoutes:
    """The innermost middleware: answers the requests of the app's ``FastRoute`` routes (module docstring)."""

    def __init__(self, app: ASGIApp, *, tally: Any) -> None:
        self.app = app
        self.tally = tally  # the FastAPI app: its routes
        self._served: list[_Served] | None = None

    def served(self) -> list[_Served]:
        """The app's POST routes of class ``FastRoute``, found once (routes are all added before serving)."""
        if self._served is None:
            self._served = [
                _Served(context.path, context.path_regex, route, context.status_code, context.response_field,
                        context.response_model)
                for context in iter_route_contexts(self.tally.routes)
                if isinstance(route := context.original_route, FastRoute) and "POST" in route.methods
                and context.path]
        return self._served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._match(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if served is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        try:
            status, payload = await self._answer(scope, served, body)
        except HandToFastAPI:
            await self.app(scope, _replaying(body, receive), send)
            return
        except TallyError as exc:
            headers = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
            await _send(send, exc.status, orjson.dumps(exc.body()), headers)
            return
        await _send(send, status, payload, [])

    def _match(self, scope: Scope) -> _Served | None:
        for served in self.served():
            found = served.pattern.match(scope["path"])
            if found is not None:
                scope["route"] = served.route  # as FastAPI sets it: the request log and metrics read its path
                scope["path_params"] = found.groupdict()
                return served
        return None

    @staticmethod
    async def _answer(scope: Scope, served: _Served, body: bytes) -> tuple[int, bytes]:
        route = served.route
        call = FastCall(route.endpoint, route, _ReadRequest(scope, body), body)
        result = await route.call(call)
        field = served.response_field
        assert field is not None
        if type(result) is not served.response_model:  # an instance of the model itself validates as itself
            result, errors = field.validate(result, {}, loc=("response",))
            assert not errors, errors
        return call.status_code or served.status_code or 200, field.serialize_json(result, by_alias=True)


class _ReadRequest(Request):
    """The request as the endpoint sees it: its body, read already, is what ``body()`` answers."""

    def __init__(self, scope: Scope, body: bytes) -> None:
        super().__init__(scope)
        self._read = body

    async def body(self) -> bytes:
        return self._read


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
