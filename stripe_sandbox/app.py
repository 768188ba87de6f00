"""The sandbox's HTTP front: authentication, form decoding, idempotency, expansion, errors.

The API lives under ``/v1``; hosted pages (Checkout, 3-D Secure) and the sandbox-only control API
(``/_sandbox``) are plain Starlette routes beside it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route as StarletteRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

# control and triggers register themselves
from . import control, expand, faults, hooks, resources, triggers  # noqa: F401
from .config import SandboxConfig
from .errors import StripeError, authentication, idempotency, invalid_request, unknown_param
from .forms import parse_form
from .ids import new_id
from .page_headers import PageHeaders
from .params import Params
from .routing import ROUTES, Route, Router
from .state import RequestInfo, Sandbox

log = logging.getLogger("stripe_sandbox")

IDEMPOTENCY_KEY_MAX = 255


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


class Api:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.router = Router(ROUTES)

    async def handle(self, request: Request) -> Response:
        status, body, headers = await self.answer(request)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    async def answer(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        request_id = new_id("req", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": request.headers.get("stripe-version",
                                                                                   self.sb.api_version)}
        fault_key = (request.method, request.url.path, request.headers.get("idempotency-key"))
        injected = self.sb.faults.take("before", *fault_key)
        if injected is not None:
            return injected, faults.error_body(injected), headers
        try:
            status, body, extra = await self._handle(request, request_id)
        except StripeError as err:
            hooks.body_problems(f"{request.method} {request.url.path} ({err.status})", err.to_json())
            status, body, extra = err.status, orjson.dumps(err.to_json()), err.headers
        except Exception:  # a bug in a handler: Stripe's shape for its own failures, and a log line
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            error = {"error": {"type": "api_error", "message": "An unexpected error occurred in the sandbox."}}
            return 500, orjson.dumps(error), headers
        injected = self.sb.faults.take("after", *fault_key)
        if injected is not None:  # served, and the answer lost on its way back
            return injected, faults.error_body(injected), headers
        headers.update(extra)
        if hooks.BODY_CHECKS and status == 200:
            headers["Stripe-Sandbox-Shape-Checked"] = "true"  # tells a checking client it need not check again
        return status, body, headers

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/v1`` straight from the server: Starlette's middleware, router and Response cost a third of a
        simple request's server time, and the API needs none of them."""
        status, body, headers = await self.answer(Request(scope, receive))
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, request: Request, request_id: str) -> tuple[int, bytes, dict[str, str]]:
        _authenticate(request)
        method = request.method
        path = request.url.path.rstrip("/") or "/"
        route, path_params = self._route(method, path)
        data = await _form(request)
        for name in data:
            if name not in route.params:
                raise unknown_param(name)
        idem_key = request.headers.get("idempotency-key") if method == "POST" else None
        fingerprint = ""
        if idem_key is not None:
            fingerprint = _fingerprint(idem_key, method, path, data)
            saved = self.sb.idempotent.get(idem_key)
            if saved is not None:
                if saved.fingerprint != fingerprint:
                    raise idempotency(
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{idem_key}' if you meant to execute a different "
                        "request.")
                return saved.status, saved.body, {"Idempotent-Replayed": "true", "Idempotency-Key": idem_key}
        status, body = self._run(request, request_id, route, path_params, Params(data), idem_key)
        extra: dict[str, str] = {}
        if idem_key is not None:
            self.sb.idempotent.save(idem_key, fingerprint, status, body)
            extra["Idempotency-Key"] = idem_key
        return status, body, extra

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        found = self.router.match(method, path)
        if found is None:
            if self.router.allows_path(path):
                raise invalid_request(f"Unrecognized request URL ({method}: {path}).", status=405)
            raise invalid_request(
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/.", status=404)
        return found

    def _run(self, request: Request, request_id: str, route: Route, path_params: dict[str, str], params: Params,
             idem_key: str | None) -> tuple[int, bytes]:
        """The handler's answer, expanded and shape-checked; with an idempotency key, a refusal that is not a
        validation error is an answer too (to save and replay)."""
        self.sb.current_request = RequestInfo(request_id, idem_key,
                                              request.headers.get("stripe-version") or self.sb.api_version)
        try:
            result = route.handler(self.sb, params, **path_params)
            result = expand.apply(self.sb, result, params.str_list("expand"))
            _check_shape(f"{request.method} {request.url.path.rstrip('/') or '/'}", result)
            return 200, orjson.dumps(result)
        except StripeError as err:
            # Stripe saves the outcome of a request that started executing (a decline, say), but not
            # of one refused by validation.
            if idem_key is None or err.body.get("type") == "invalid_request_error":
                raise
            return err.status, orjson.dumps(err.to_json())
        finally:
            self.sb.current_request = None


def _authenticate(request: Request) -> None:
    key = _api_key(request)
    if not key:
        raise authentication(
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
    if not key.startswith("sk_test_"):
        shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
        raise authentication(f"Invalid API Key provided: {shown}")


async def _form(request: Request) -> dict[str, Any]:
    """The request's parameters: a POST's form body (JSON is refused, as Stripe does), else the query."""
    if request.method == "POST":
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        if raw and "json" in ctype:
            raise invalid_request("Invalid request: the body must be form-encoded "
                                  "(application/x-www-form-urlencoded).")
        return parse_form(raw)
    return parse_form(request.url.query)


def _fingerprint(idem_key: str, method: str, path: str, data: dict[str, Any]) -> str:
    if len(idem_key) > IDEMPOTENCY_KEY_MAX:
        raise invalid_request(
            f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} characters long.", param="Idempotency-Key")
    return hashlib.sha256(orjson.dumps([method, path, data], option=orjson.OPT_SORT_KEYS)).hexdigest()


def _check_shape(where: str, result: dict[str, object]) -> None:
    """Fail the request whose answer a registered conformance check finds not shaped as Stripe's."""
    problems = hooks.body_problems(where, result)
    if problems:
        raise StripeError(500, "api_error", "The sandbox's answer is not shaped as Stripe's: " + "; ".join(problems))


def create_app(config: SandboxConfig | None = None, sb: Sandbox | None = None) -> Starlette:
    sb = sb or Sandbox(config or SandboxConfig())
    api = Api(sb)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await sb.webhooks.start()
        await sb.scheduler.start()
        resources.on_start(sb)
        yield
        await sb.scheduler.stop()
        await sb.webhooks.stop()
        sb.store.close()

    routes: list[BaseRoute] = [
        *resources.page_routes(),
        StarletteRoute("/v1/{rest:path}", api.handle, methods=["GET", "POST", "DELETE"]),
        Mount("/static", app=StaticFiles(packages=[("stripe_sandbox", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sb
    app.add_middleware(PageHeaders)  # the hosted pages' security headers (the API below skips it)
    app.middleware_stack = _api_first(app, api)
    return app


def _api_first(app: Starlette, api: Api) -> ASGIApp:
    """The app's middleware stack, with ``/v1`` requests taken out before it (see ``Api.asgi``)."""
    stack = app.build_middleware_stack()

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await api.asgi(scope, receive, send)
        else:
            await stack(scope, receive, send)

    return dispatch
