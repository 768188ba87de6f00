"""``tally disputes``: the open disputes, the soonest evidence deadline first, with the days left to respond.
The database modules are imported when the command runs, so that ``tally --help`` stays quick."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from .. import currency as money
from ..config import Settings

if TYPE_CHECKING:
    from .repository import DisputeLine


async def load(limit: int) -> list[DisputeLine]:
    from ..db import Database, resolve_database_url
    from .repository import open_disputes

    db = Database(resolve_database_url(Settings()), pool_size=1)
    try:
        async with db.transaction() as session:
            return await open_disputes(session, limit=limit)
    finally:
        await db.dispose()


def as_json(line: DisputeLine, now: datetime) -> dict[str, object]:
    return {"id": line.id, "user_id": line.user_id, "charge_id": line.charge_id, "order_id": line.order_id,
            "invoice_id": line.subscription_invoice_id, "amount": line.amount, "currency": line.currency,
            "reason": line.reason, "status": line.status, "evidence_due_by": line.evidence_due_by,
            "days_left": line.days_left(now), "credits_withdrawn": line.credits_withdrawn}


def as_text(lines: list[DisputeLine], now: datetime) -> str:
    if not lines:
        return "tally: no open disputes"
    out = [f"tally: {len(lines)} open dispute{'s' if len(lines) != 1 else ''}, the soonest deadline first"]
    for d in lines:
        due = f"respond by {d.due_at:%Y-%m-%d %H:%M} UTC ({d.time_left(now)})" if d.due_at else d.time_left(now)
        out.append(f"  {d.id}  {money.format_amount(d.amount, d.currency)}  {d.reason or 'no reason given'}  "
                   f"[{d.status}]  {due}")
        out.append(f"      user {d.user_id}, {d.paid_for}, charge {d.charge_id}; "
                   f"{d.credits_withdrawn:,} credits taken back")
    return "\n".join(out)


def disputes(
    as_json_output: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 200,
) -> None:
    """List the open disputes (chargebacks), the soonest evidence deadline first, with the days left to respond.
    Answer them in Stripe's Dashboard; a won one gives the user's credits back by itself."""
    lines = asyncio.run(load(limit))
    now = datetime.now(UTC)
    if as_json_output:
        typer.echo(json.dumps([as_json(d, now) for d in lines], indent=2))
    else:
        typer.echo(as_text(lines, now))
