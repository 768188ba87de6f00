"""Idempotency keys from Tally's own record ids: a request retried after a crash or a timeout is the same
Stripe request."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def idempotency_key(kind: str, record_id: object, action: str) -> str:
    """Keys from our own ids: a retried request after a crash or timeout is the same Stripe request."""
    return f"tally:{kind}:{record_id}:{action}"


def update_key(kind: str, object_id: str, params: dict[str, Any]) -> str:
    """The key of an update: the object and what it is set to. Stripe keeps a key for 24 hours and refuses it
    with other parameters, so the same change retried is one request, and a later different change (the same
    field set to something else) gets a key of its own."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return idempotency_key(kind, object_id, f"update:{digest}")
