"""The ``Stripe-Signature`` header: ``t=<unix>,v1=<hex hmac-sha256(secret, f"{t}.{body}")>``."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    message = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header(secrets: list[str], timestamp: int, payload: bytes) -> str:
    """One ``v1`` per active secret, so a receiver mid-rotation accepts either."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, payload)}" for s in secrets)])
