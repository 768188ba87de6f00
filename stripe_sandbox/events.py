"""Events: every state change records one, and the deliverer sends it to matching webhook endpoints."""

from __future__ import annotations

from typing import Any

import orjson

from . import hooks
from .ids import new_id
from .store import Obj


def emit(sb: Any, type_: str, obj: Obj, previous_attributes: dict[str, Any] | None = None) -> Obj:
    request = sb.current_request
    # a snapshot: later changes to the object must not alter what the event says
    data: dict[str, Any] = {"object": orjson.loads(orjson.dumps(obj))}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    event = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": request.api_version if request else sb.api_version,
        "created": sb.clock.now_int(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {
            "id": request.request_id if request else None,
            "idempotency_key": request.idempotency_key if request else None,
        },
        "type": type_,
    }
    hooks.body_problems(f"event {type_}", event)  # a conformance check records what it finds
    sb.store.add(event)
    sb.webhooks.enqueue(event)
    return event


def changed(obj: Obj, before: Obj) -> dict[str, Any]:
    """``previous_attributes`` of an update: the old values of the top-level fields that changed."""
    return {k: v for k, v in before.items() if obj.get(k) != v}
