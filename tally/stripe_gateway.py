"""The one module that talks to Stripe: a single ``StripeClient`` with a pinned API version, timeouts,
network retries, and idempotency keys derived from Tally's own record ids.

With no Stripe key configured the same client points at the offline sandbox that ``tally serve``
starts; nothing else in Tally knows the difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import stripe

from .errors import PaymentFailed, UpstreamUnavailable

API_VERSION = "2026-10-28.endive"
SANDBOX_KEY = "sk_test_tally_sandbox"


def make_client(secret_key: str, api_base: str | None = None, *, timeout: float = 20.0,
                max_network_retries: int = 2) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        secret_key,
        stripe_version=API_VERSION,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=max_network_retries,
        http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
    )


def idempotency_key(kind: str, record_id: object, action: str) -> str:
    """Keys from our own ids: a retried request after a crash or timeout is the same Stripe request."""
    return f"tally:{kind}:{record_id}:{action}"


def update_key(kind: str, object_id: str, params: dict[str, Any]) -> str:
    """The key of an update: the object and what it is set to. Stripe keeps a key for 24 hours and refuses it
    with other parameters, so the same change retried is one request, and a later different change (the same
    field set to something else) gets a key of its own."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return idempotency_key(kind, object_id, f"update:{digest}")


@asynccontextmanager
async def stripe_call(what: str) -> AsyncIterator[None]:
    """Map Stripe's failures to Tally's errors: unreachable or 5xx/429 → 503 (safe to retry);
    a card decline → 402 with Stripe's message."""
    try:
        yield
    except stripe.CardError as exc:
        raise PaymentFailed(exc.user_message or str(exc), code=exc.code,
                            decline_code=getattr(exc.error, "decline_code", None)) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise UpstreamUnavailable(
            f"The payment provider is unavailable ({what}); nothing was charged, please retry.") from exc
