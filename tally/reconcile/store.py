"""A thin adapter onto the webhook receiver's own path: an event listed from Stripe's API enters the inbox
exactly as a delivered one does, through ``tally.webhooks.service.store_event`` (insert once, autocommitted;
a duplicate changes nothing; the inbox workers claim new rows). The listed event is already authentic (it came
from Stripe over the authenticated API), so it skips the signature check only.
"""

from __future__ import annotations

from typing import Any

import orjson
import procrastinate

from ..webhooks import service as webhooks
from ..webhooks.signature import VerifiedEvent


def as_verified(event: dict[str, Any]) -> VerifiedEvent:
    return VerifiedEvent(raw=orjson.dumps(event).decode(), id=str(event["id"]), type=str(event["type"]),
                         created=int(event["created"]), livemode=bool(event["livemode"]))


async def store_listed_event(jobs: procrastinate.App, event: dict[str, Any]) -> bool:
    """True when the event was new to the inbox (it never arrived as a webhook), False for a duplicate."""
    verified = as_verified(event)
    async with jobs.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        return await webhooks.store_event(conn, verified)
