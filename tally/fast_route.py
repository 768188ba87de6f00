"""Routes whose well-formed requests skip FastAPI's dependency solving and validation, declared as such.

Stripe's deliveries and the credits API's spends, holds and captures are the paths under load; for them,
solving the route's dependencies and validating its inputs and its answer were a large share of the API's
CPU per request (``bench/webhooks.py``, ``bench/spend.py``). A route declared with ``fast_route(call)`` is
still an ordinary ``APIRoute``: it is routed, listed in the OpenAPI schema from its own endpoint's signature,
``response_model`` and ``responses``, and served behind every middleware. Only its handler differs: ``call``
runs the route's very endpoint with the inputs FastAPI would give it (read from the request directly), and
the answer is serialised by the route's own response field with the route's own status code. A request
``call`` cannot read as well-formed (it raises ``HandToFastAPI``: a body that does not validate, no valid
credentials, ...) is handed to FastAPI's own handler for the same route, body included, so every refusal is
FastAPI's own answer. Errors the endpoint raises (``TallyError``) reach the app's error handlers as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

_JSON = "application/json"


class HandToFastAPI(Exception):
    """The request is not well-formed for the direct call: FastAPI's own handler answers it."""


@dataclass(frozen=True)
class FastCall:
    endpoint: Callable[..., Awaitable[Any]]  # the route's own endpoint
    route: APIRoute  # its path parameters' fields validate what ``path_param`` reads
    request: Request
    body: bytes
    response: Response  # the endpoint may set its status (a hold's replay answers 200)

    def path_param(self, name: str) -> Any:
        """A path parameter validated as the route declares it (else FastAPI's own 422/400)."""
        field = next(f for f in self.route.dependant.path_params if f.alias == name)
        value, errors = field.validate(self.request.path_params.get(name), {}, loc=("path", name))
        if errors:
            raise HandToFastAPI
        return value


Call = Callable[[FastCall], Awaitable[Any]]


def fast_route(call: Call, *, name: str) -> type[APIRoute]:
    """The route class for endpoints that ``call`` knows how to call:
    ``router.add_api_route(path, endpoint, route_class_override=fast_route(call, name=...), ...)``."""
    return type(name, (FastRoute,), {"call": staticmethod(call)})


def post(router: APIRouter, path: str, route_class: type[APIRoute], **options: Any) -> Callable[[Endpoint], Endpoint]:
    """``@router.post(path, **options)`` for a route of ``route_class`` (``fast_route``)."""
    def declare(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["POST"], route_class_override=route_class, **options)
        return endpoint

    return declare


Endpoint = Callable[..., Awaitable[Any]]


class FastRoute(APIRoute):
    call: Call

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handler = super().get_route_handler()
        # Under include_router, FastAPI builds the handler for the route as included (``route``): its status
        # code and response field are those of that context.
        route: Any = _included_context(self) or self
        endpoint, field, status_code = route.endpoint, route.response_field, route.status_code
        call = type(self).call

        async def handle(request: Request) -> Response:
            body = await request.body()  # kept on the request: FastAPI's handler reads it again if handed on
            response = Response()
            response.status_code = None  # type: ignore[assignment]  # as FastAPI's sub-response: unset
            try:
                result = await call(FastCall(endpoint, self, request, body, response))
            except HandToFastAPI:
                return await fastapi_handler(request)
            assert field is not None
            value, errors = field.validate(result, {}, loc=("response",))
            assert not errors, errors
            return Response(field.serialize_json(value, by_alias=True),
                            status_code=response.status_code or status_code or 200, media_type=_JSON)

        return handle


def _included_context(route: APIRoute) -> Any:
    """FastAPI's context of ``route`` being built under ``include_router`` (None for a route used as is)."""
    from fastapi import routing

    context = routing._effective_route_context_var.get()  # noqa: SLF001 - the one way to read it, as APIRoute does
    return context if context is not None and context.original_route is route else None
