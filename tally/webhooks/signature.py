"""The signature check, as a FastAPI dependency: the raw body is verified before it is parsed, with every
configured secret (two while a secret is being rolled), and only then read as an event.

``stripe.WebhookSignature.verify_header`` + ``orjson`` instead of ``stripe.Webhook.construct_event``:
the receiver needs only the id, type, created and livemode, and building the StripeObject costs many times
the signature check (README, Benchmarks). Full objects are built in the worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from ..errors import TallyError
from ..stripe_gateway import SignatureVerificationError, verify_signature

# Stripe's own default: a signed timestamp older than this is a replay or a clock problem.
TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "stripe-signature"
# JSON's escape for the NUL character: \u0000 after an even number of backslashes (else it is the text "\u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class InvalidWebhook(TallyError):
    status = 400
    type = "invalid_webhook"


class WebhookNotConfigured(TallyError):
    """No signing secret: refuse rather than accept anything, since an empty key can be forged. 503, so
    that Stripe keeps retrying until the secret is configured."""

    status = 503
    type = "webhook_not_configured"


@dataclass(frozen=True)
class VerifiedEvent:
    raw: str  # the body exactly as signed (stored as is)
    id: str
    type: str
    created: int
    livemode: bool


def verify(body: bytes, header: str | None, secrets: list[str], *,
           tolerance: int = TOLERANCE_SECONDS) -> str:
    """The body as text when one of ``secrets`` signed it within ``tolerance``; else ``InvalidWebhook``."""
    usable = [s for s in secrets if s and s.strip()]
    if not usable:
        raise WebhookNotConfigured("No webhook signing secret is configured (STRIPE_WEBHOOK_SECRET).")
    if not header:
        raise InvalidWebhook("Missing Stripe-Signature header.", param="Stripe-Signature")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebhook("The body is not UTF-8.") from None
    stale = False
    for secret in usable:
        try:
            verify_signature(text, header, secret, tolerance)
            return text
        except SignatureVerificationError as exc:
            # The SDK checks the timestamp only once a signature matched: a tolerance error under any one
            # secret means "signed by us, but too old" (a replay), whatever the other secrets said.
            stale = stale or "tolerance" in str(exc)
    message = "Timestamp outside the tolerance zone." if stale else "No valid signature for this body."
    raise InvalidWebhook(message, param="Stripe-Signature")


def parse_event(text: str, *, live_mode: bool) -> VerifiedEvent:
    if "\\u0000" in text and _NUL_ESCAPE.search(text):  # PostgreSQL's jsonb cannot hold a NUL
        raise InvalidWebhook("The event contains the NUL character (\\u0000), which cannot be stored.")
    try:
        event: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidWebhook("The body is not JSON.") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidWebhook("The body is not a Stripe event.")
    if not _has_event_fields(event):
        raise InvalidWebhook("The event lacks id, type, created, livemode or data.")
    event_id, event_type, created, livemode = event["id"], event["type"], event["created"], event["livemode"]
    if livemode != live_mode:
        # A test event reaching a live deployment (or the reverse) is a misrouted endpoint, never money.
        raise InvalidWebhook(f"A {'live' if livemode else 'test'}-mode event reached a "
                             f"{'live' if live_mode else 'test'}-mode Tally.", param="livemode")
    return VerifiedEvent(raw=text, id=event_id, type=event_type, created=created, livemode=livemode)


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 255


def _has_event_fields(event: dict[str, Any]) -> bool:
    """id and type (short strings), created (an int, not a bool), livemode (a bool) and data (an object)."""
    created = event.get("created")
    return (_short_text(event.get("id")) and _short_text(event.get("type"))
            and isinstance(created, int) and not isinstance(created, bool)
            and isinstance(event.get("livemode"), bool) and isinstance(event.get("data"), dict))


async def verified_event(request: Request) -> VerifiedEvent:
    services = request.app.state.services
    body = await request.body()
    text = verify(body, request.headers.get(SIGNATURE_HEADER), services.webhook_secrets)
    return parse_event(text, live_mode=services.settings.live_mode)


StripeEvent = Annotated[VerifiedEvent, Depends(verified_event)]
