"""Stripe's error shape: ``{"error": {"type", "code", "message", "param", ...}}`` with Stripe's statuses."""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = DOC_URL + code.replace("_", "-")
        if param:
            self.body["param"] = param
        self.body.update({k: v for k, v in extra.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return {"error": self.body}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None, status: int = 400,
                    **extra: Any) -> StripeError:
    return StripeError(status, "invalid_request_error", message, param=param, code=code, **extra)


def missing_param(param: str) -> StripeError:
    return invalid_request(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid_request(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return invalid_request(f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404)


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def idempotency(message: str) -> StripeError:
    return StripeError(400, "idempotency_error", message)


def state_error(message: str, *, code: str = "unexpected_state", param: str | None = None) -> StripeError:
    return invalid_request(message, code=code, param=param)
