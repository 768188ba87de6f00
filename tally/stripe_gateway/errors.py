"""Stripe's failures as Tally sees them.

The SDK's exception classes are re-exported under their own names, so domains catch them from the gateway
(``except stripe_gateway.InvalidRequestError``) without importing the SDK; ``stripe_call`` maps the failures a
caller cannot fix to Tally's own errors (``tally.errors``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe

from ..errors import PaymentFailed, UpstreamUnavailable

StripeError = stripe.StripeError
APIConnectionError = stripe.APIConnectionError
APIError = stripe.APIError
AuthenticationError = stripe.AuthenticationError
CardError = stripe.CardError
InvalidRequestError = stripe.InvalidRequestError
PermissionError = stripe.PermissionError  # noqa: A001 - Stripe's name; reached as stripe_gateway.PermissionError
RateLimitError = stripe.RateLimitError
SignatureVerificationError = stripe.SignatureVerificationError


def is_missing(exc: StripeError) -> bool:
    """Stripe has no such object (404): deleted, or never in this account."""
    return exc.http_status == 404


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
