"""Injected API failures, for fault tests (set through ``POST /_sandbox/faults``, see ``control.py``).

A fault makes API requests under a path prefix answer an error status — the next ``count`` requests, or
every request for ``seconds`` — in one of two ways:

- ``before``: refused before anything happens, as when Stripe is overloaded (500, 502, 503) or rate-limits
  the caller (429);
- ``after``: served (objects created, the idempotent answer saved), then the answer is replaced by the
  error, as when a response is lost on its way back. A retry with the same ``Idempotency-Key`` then gets
  the saved answer, which is what makes retrying safe.

Every faulted request is recorded (method, path, idempotency key, status), so a test can see what the
client sent and that its retries reused their key.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

STATUSES = (429, 500, 502, 503)
WHEN = ("before", "after")


@dataclass
class Fault:
    status: int
    path: str  # prefix of the request paths it applies to
    when: str
    remaining: int | None  # requests left to fault (None: until ``until``)
    until: float | None  # time.monotonic() deadline (None: by count)
    method: str | None = None  # only requests with this HTTP method (None: any)

    def live(self) -> bool:
        if self.remaining is not None:
            return self.remaining > 0
        return self.until is not None and time.monotonic() < self.until


@dataclass
class Injected:
    method: str
    path: str
    idempotency_key: str | None
    status: int
    when: str


@dataclass
class Faults:
    active: Fault | None = None
    injected: list[Injected] = field(default_factory=list)

    def set(self, fault: Fault) -> None:
        self.active = fault

    def clear(self) -> None:
        self.active = None
        self.injected.clear()

    def take(self, when: str, method: str, path: str, idempotency_key: str | None) -> int | None:
        """The status to answer this request with at stage ``when``, or None to serve it normally."""
        fault = self.active
        if fault is None or fault.when != when or not path.startswith(fault.path) \
                or (fault.method is not None and fault.method != method.upper()):
            return None
        if not fault.live():
            self.active = None
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        self.injected.append(Injected(method, path, idempotency_key, fault.status, when))
        return fault.status

    def state(self) -> dict[str, Any]:
        fault = self.active if self.active is not None and self.active.live() else None
        shown = None
        if fault is not None:
            shown = {"status": fault.status, "path": fault.path, "method": fault.method, "when": fault.when,
                     "remaining": fault.remaining,
                     "seconds_left": None if fault.until is None else round(fault.until - time.monotonic(), 3)}
        return {"active": shown, "injected": [asdict(i) for i in self.injected]}


def error_body(status: int) -> bytes:
    """Stripe's error shapes: a 429 is ``rate_limit``; 5xx are ``api_error``."""
    if status == 429:
        error = {"type": "invalid_request_error", "code": "rate_limit",
                 "message": "Too many requests hit the API too quickly (injected by the sandbox)."}
    else:
        error = {"type": "api_error", "message": f"The sandbox was told to fail this request ({status})."}
    return orjson.dumps({"error": error})
