"""Webhook signature verification: the SDK's check of the ``Stripe-Signature`` header on the raw body."""

from __future__ import annotations

import stripe


def verify_signature(payload: str, header: str, secret: str, tolerance: int) -> None:
    """Return when ``secret`` signed ``payload`` within ``tolerance`` seconds; else raise
    ``SignatureVerificationError`` (its message names the tolerance when only the timestamp is too old)."""
    stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
