"""One error root, one JSON shape: ``{"error": {"type", "message", "param"}}`` with the right status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class StartupError(Exception):
    """Tally cannot start, or a command cannot run, as configured: the message says what is wrong and how to
    fix it. Commands print it as one line (no traceback) and exit with ``exit_code``."""

    exit_code = 1


class TallyError(Exception):
    status = 400
    type = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "message": self.message, "param": self.param, **self.extra}}


class InvalidRequest(TallyError):
    status = 400
    type = "invalid_request"


class Unauthenticated(TallyError):
    status = 401
    type = "unauthenticated"


class Forbidden(TallyError):
    status = 403
    type = "forbidden"


class NotFound(TallyError):
    status = 404
    type = "not_found"


class Conflict(TallyError):
    status = 409
    type = "conflict"


class InsufficientCredits(TallyError):
    status = 409
    type = "insufficient_credits"


class PaymentFailed(TallyError):
    status = 402
    type = "payment_failed"


class PayloadTooLarge(TallyError):
    status = 413
    type = "payload_too_large"


class UpstreamUnavailable(TallyError):
    """Stripe could not be reached or failed; nothing was written, retrying is safe."""

    status = 503
    type = "payment_provider_unavailable"


def error_response(status: int, type_: str, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message, "param": param}}, status_code=status,
                          headers=headers)


def _param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


# Tally's error body, for the OpenAPI schema (see ``document_errors``).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error", "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["type", "message"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                       "param": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "additionalProperties": True}}}  # extra facts, e.g. ``balance`` with insufficient_credits
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI schema say what the handlers below send: FastAPI declares a 422 with its own
    body on every route that takes input, but a validation error is answered 400 in Tally's shape; and
    an error a route declares with a description only gets Tally's error body."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": "Invalid request"})
            for status, response in responses.items():
                if status[:1] in ("4", "5") and "content" not in response:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Error"] = ERROR_SCHEMA
    return schema


def install_error_handlers(app: FastAPI) -> None:
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build_schema())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema

    @app.exception_handler(TallyError)
    async def tally_error(request: Request, exc: TallyError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "Invalid request", "loc": ()}
        param = _param(tuple(first.get("loc", ())))
        kind = first.get("type", "")
        if kind == "json_invalid":
            message = "The request body is not valid JSON."
        else:
            message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return error_response(400, "invalid_request", message, param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        types = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden",
                 413: "payload_too_large", 429: "rate_limited"}
        return error_response(exc.status_code, types.get(exc.status_code, "http_error"), str(exc.detail),
                              headers=getattr(exc, "headers", None))
