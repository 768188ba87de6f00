"""Signed Stripe-style events for tests and the benchmark: the HMAC computed the way Stripe documents it
(``v1 = hex(HMAC-SHA256(secret, f"{t}.{body}"))``), so the receiver is checked against the spec and not
against the SDK that it uses itself."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from decimal import Decimal
from typing import Any

import orjson


def signature(body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, *secrets: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header with one ``v1`` per secret (several while a secret is rolled)."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}"] + [f"v1={signature(body, s, t)}" for s in secrets])


def make_event(event_type: str = "tally.test.noop", *, event_id: str | None = None, livemode: bool = False,
               obj: dict[str, Any] | None = None, pad_to: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id or f"evt_test_{uuid.uuid4().hex}", "object": "event", "api_version": "2026-10-28.endive",
        "created": int(time.time()), "livemode": livemode, "pending_webhooks": 1, "type": event_type,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj or {"id": "obj_" + uuid.uuid4().hex[:12], "object": "test"}},
    }
    if pad_to:
        event["data"]["object"]["padding"] = "x" * max(0, pad_to - len(orjson.dumps(event)))
    return event


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # the SDK's to_dict() turns Stripe's *_decimal strings into Decimals
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def signed(event: dict[str, Any], secret: str, **kw: Any) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(event, default=_json_default)
    return body, {"Stripe-Signature": sign(body, secret, **kw), "Content-Type": "application/json"}


async def deliver(url: str, events: list[dict[str, Any]], secret: str, *, concurrency: int = 16) -> list[int]:
    """POST each event (signed at send time, as Stripe does per attempt) with ``concurrency`` in flight;
    the status codes in order."""
    import asyncio

    import httpx

    statuses = [0] * len(events)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(events)):
        queue.put_nowait(i)

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body, headers = signed(events[i], secret)
                statuses[i] = (await client.post(url, content=body, headers=headers)).status_code

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses
