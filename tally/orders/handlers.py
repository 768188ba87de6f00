"""Webhook handlers for payments. Each one only names the Stripe object; the service re-fetches it and
acts on its current state under the order row lock, so duplicates and any arrival order are safe.
``ctx.session`` is the transaction that also marks the event processed: never commit here; raising
(e.g. ``OrderNotFoundYet`` for an order still being committed) makes the event retry."""

from __future__ import annotations

from typing import Any

from ..webhooks.dispatch import HandlerContext, handles
from . import events


def _object_id(event: dict[str, Any]) -> str:
    return str(event["data"]["object"]["id"])


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded",
         "checkout.session.async_payment_failed", "checkout.session.expired")
async def checkout_session_changed(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await events.on_checkout_session(ctx.session, ctx.stripe, settings=ctx.settings,
                                      checkout_session_id=_object_id(event))


@handles("payment_intent.succeeded", "payment_intent.payment_failed")
async def payment_intent_changed(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await events.on_payment_intent(ctx.session, ctx.stripe, settings=ctx.settings,
                                    payment_intent_id=_object_id(event))


# ``charge.refunded`` is handled by ``tally.reversals.handlers`` (a refund may be a pack's or an invoice's).
