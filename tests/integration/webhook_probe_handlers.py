"""A handler loaded into ``tally worker`` processes through ``TALLY_HANDLER_MODULES`` by the worker tests:
it records each processing in ``probe_credits`` with no unique key, so processing an event twice shows
as two rows instead of being hidden by a constraint."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import text

from tally.webhooks.dispatch import HandlerContext, handles

PROBE_TYPE = "tally.probe.credit"
CREATE = "CREATE TABLE IF NOT EXISTS probe_credits (event_id text NOT NULL, pid int NOT NULL)"


@handles(PROBE_TYPE)
async def probe_credit(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await ctx.session.execute(text("INSERT INTO probe_credits (event_id, pid) VALUES (:e, :p)"),
                              {"e": ctx.event_id, "p": os.getpid()})
