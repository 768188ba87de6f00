"""The sandbox-only control API under ``/_sandbox`` (no Stripe equivalent): reset, deliveries, resend,
trigger, clock, webhook outage. JSON in, JSON out; no API key, since it serves tests on this machine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import resources
from .errors import StripeError, invalid_request, no_such
from .faults import STATUSES, WHEN, Fault
from .ids import new_secret
from .routing import PAGE_ROUTES
from .state import Sandbox

Triggers = dict[str, Callable[[Sandbox, dict[str, Any]], dict[str, Any]]]
TRIGGERS: Triggers = {}  # event type -> a function that makes the state change causing it


def trigger(event_type: str) -> Callable[[Callable[[Sandbox, dict[str, Any]], dict[str, Any]]],
                                         Callable[[Sandbox, dict[str, Any]], dict[str, Any]]]:
    def register(fn: Callable[[Sandbox, dict[str, Any]], dict[str, Any]]) -> Callable[
            [Sandbox, dict[str, Any]], dict[str, Any]]:
        TRIGGERS[event_type] = fn
        return fn

    return register


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return dict(request.query_params)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_request("The control API takes a JSON body.") from None
    if not isinstance(data, dict):
        raise invalid_request("The control API takes a JSON object.")
    return data


def _endpoint(fn: Callable[[Sandbox, dict[str, Any]], Any]) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        sb: Sandbox = request.app.state.sandbox
        try:
            data = await _body(request)
            data.update(request.path_params)
            return _json(fn(sb, data))
        except StripeError as err:
            return _json(err.to_json(), err.status)

    return handle


def reset(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    sb.reset()
    resources.on_start(sb)
    return {"reset": True}


def deliveries(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    """Every delivery attempt, oldest first; filters ``event``, ``endpoint``, ``event_type``."""
    attempts = sb.webhooks.attempts_for(data.get("event") or None, data.get("endpoint") or None)
    if data.get("event_type"):
        attempts = [a for a in attempts if a.event_type == data["event_type"]]
    return {"object": "list", "data": [a.to_json() for a in attempts],
            "pending": not sb.webhooks.idle(), "paused": sb.webhooks.paused, **sb.webhooks.waiting()}


def resend(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    event_id = data["event_id"]
    if sb.store.get(event_id, "event") is None:
        raise no_such("event", event_id)
    endpoints = [data["endpoint"]] if data.get("endpoint") else list(sb.store.collection("webhook_endpoint").ids)
    for endpoint_id in endpoints:
        if sb.store.get(endpoint_id, "webhook_endpoint") is None:
            raise no_such("webhook endpoint", endpoint_id, "endpoint")
        sb.webhooks.resend(event_id, endpoint_id)
    return {"resent": event_id, "endpoints": endpoints}


def run_trigger(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    event_type = data.get("event")
    if event_type not in TRIGGERS:
        raise invalid_request(f"Cannot trigger {event_type!r}; known: {', '.join(sorted(TRIGGERS))}", param="event")
    return TRIGGERS[event_type](sb, data)


def advance_clock(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    try:
        seconds = float(data.get("seconds", 0))
    except (TypeError, ValueError):
        raise invalid_request("seconds must be a number", param="seconds") from None
    if seconds < 0:
        raise invalid_request("the clock only moves forward", param="seconds")
    sb.advance_clock(seconds)
    return {"now": sb.clock.now_int(), "offset": sb.clock.offset}


def webhooks_pause(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    sb.webhooks.pause()
    return {"paused": True}


def webhooks_resume(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    sb.webhooks.resume()
    return {"paused": False}


def roll_secret(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    """A new signing secret; the old ones keep signing (one ``v1`` each) for ``expire_old_after_seconds``
    (default 24 h, Stripe's longest overlap; 0 drops them at once)."""
    endpoint_id = data["endpoint_id"]
    if sb.store.get(endpoint_id, "webhook_endpoint") is None:
        raise no_such("webhook endpoint", endpoint_id)
    try:
        expire_after = float(data.get("expire_old_after_seconds", 86400))
    except (TypeError, ValueError):
        raise invalid_request("expire_old_after_seconds must be a number",
                              param="expire_old_after_seconds") from None
    if not 0 <= expire_after <= 7 * 86400:
        raise invalid_request("expire_old_after_seconds must be between 0 and 604800",
                              param="expire_old_after_seconds")
    secret = new_secret("whsec")
    sb.webhooks.roll_secret(endpoint_id, secret, expire_after)
    return {"id": endpoint_id, "secret": secret, "old_secrets_expire_at": sb.clock.now_int() + int(expire_after),
            "active_secrets": len(sb.webhooks.secrets_of(endpoint_id))}


def stats(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    counts = {type_: len(c) for type_, c in sb.store.collections.items()}
    return {"objects": sb.store.count(), "by_type": counts, "now": sb.clock.now_int(),
            "deliveries": len(sb.webhooks.attempts), "idempotency_keys": len(sb.idempotent)}


def _fault_duration(data: dict[str, Any]) -> tuple[int | None, float | None]:
    """A fault's ``count`` of requests or its ``seconds``: one of the two."""
    count, seconds = data.get("count"), data.get("seconds")
    if (count is None) == (seconds is None):
        raise invalid_request("give either count or seconds", param="count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 10**6):
        raise invalid_request("count must be a positive integer", param="count")
    if seconds is not None and (not isinstance(seconds, int | float) or isinstance(seconds, bool)
                                or not 0 < seconds <= 3600):
        raise invalid_request("seconds must be a number between 0 and 3600", param="seconds")
    return count, seconds


def faults_set(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    """Make API requests fail: ``{"status": 500|502|503|429, "count": n}`` (the next n requests) or
    ``"seconds": s`` (every request for s seconds); ``"path"`` narrows it to a prefix (default ``/v1/``) and
    ``"method"`` to one HTTP method (default: any); ``"when": "after"`` serves the request and then loses its
    answer (default ``before``: refused)."""
    status, when, path = data.get("status"), data.get("when", "before"), data.get("path", "/v1/")
    method = data.get("method")
    if method is not None and method not in ("GET", "POST", "DELETE"):
        raise invalid_request("method must be GET, POST or DELETE", param="method")
    if status not in STATUSES:
        raise invalid_request(f"status must be one of {', '.join(map(str, STATUSES))}", param="status")
    if when not in WHEN:
        raise invalid_request("when must be 'before' or 'after'", param="when")
    if not isinstance(path, str) or not path.startswith("/v1/"):
        raise invalid_request("path must be an API path prefix starting with /v1/", param="path")
    count, seconds = _fault_duration(data)
    sb.faults.set(Fault(status=status, path=path, when=when, remaining=count, method=method,
                        until=None if seconds is None else time.monotonic() + float(seconds)))
    return sb.faults.state()


def faults_state(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    """The active fault (if any) and every request it failed so far."""
    return sb.faults.state()


def faults_clear(sb: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    sb.faults.clear()
    return sb.faults.state()


PAGE_ROUTES.extend([
    Route("/_sandbox/reset", _endpoint(reset), methods=["POST"]),
    Route("/_sandbox/deliveries", _endpoint(deliveries), methods=["GET"]),
    Route("/_sandbox/events/{event_id}/resend", _endpoint(resend), methods=["POST"]),
    Route("/_sandbox/trigger", _endpoint(run_trigger), methods=["POST"]),
    Route("/_sandbox/clock/advance", _endpoint(advance_clock), methods=["POST"]),
    Route("/_sandbox/webhooks/pause", _endpoint(webhooks_pause), methods=["POST"]),
    Route("/_sandbox/webhooks/resume", _endpoint(webhooks_resume), methods=["POST"]),
    Route("/_sandbox/webhook_endpoints/{endpoint_id}/roll_secret", _endpoint(roll_secret), methods=["POST"]),
    Route("/_sandbox/stats", _endpoint(stats), methods=["GET"]),
    Route("/_sandbox/faults", _endpoint(faults_set), methods=["POST"]),
    Route("/_sandbox/faults", _endpoint(faults_state), methods=["GET"]),
    Route("/_sandbox/faults", _endpoint(faults_clear), methods=["DELETE"]),
])
