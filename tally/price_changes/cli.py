"""``tally plans migrate``: move a plan's existing subscribers to a new price at their first renewal on or after
a date, with notice (``--dry-run`` lists who moves when, and the amounts, without changing anything)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ..config import Settings
from ..errors import TallyError

plans_app = typer.Typer(help="Subscription plans.", no_args_is_help=True)


@plans_app.command("migrate")
def migrate(
    plan: Annotated[str, typer.Option(help="the plan id, e.g. pro")],
    to_price: Annotated[str, typer.Option(help="the new price: its lookup key or price id, or the plans file's "
                                               "new amount in minor units")],
    effective: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="switch at the first renewal on or "
                                                                           "after this day (UTC)")],
    interval: Annotated[str, typer.Option(help="month | year")] = "month",
    notice_days: Annotated[int, typer.Option(min=0, max=365, help="days of notice before the switch")] = 30,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list who moves when; change nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Give each subscriber on another price a subscription schedule to the new one."""
    from ..runtime import prepare
    from ..stripe_gateway import close_client
    from ..subscriptions.plans import plan_book
    from . import service

    settings = Settings()
    runtime = prepare(settings, start_sandbox=False)
    services = runtime.services(run_worker=False, pool_size=2)
    effective_at = int(effective.replace(tzinfo=UTC).timestamp())

    async def main() -> tuple[list[service.Move], str | None]:
        try:
            target = await service.resolve_target(services.stripe, plan_book(settings), plan, interval, to_price)
            async with services.db.transaction() as session:
                moves = await service.plan_moves(session, services.stripe, plan_id=plan, interval=interval,
                                                 target=target, effective_at=effective_at, notice_days=notice_days)
                if dry_run:
                    return moves, None
                change = await service.apply(session, services.stripe, plan_id=plan, interval=interval,
                                             target=target, effective_at=effective_at, notice_days=notice_days,
                                             moves=moves)
                return moves, change.id
        finally:
            await services.db.dispose()
            await close_client(services.stripe)

    try:
        moves, change_id = asyncio.run(main())
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None
    _report(moves, change_id, as_json=as_json)


def _report(moves: list[Any], change_id: str | None, *, as_json: bool) -> None:
    from .. import currency as money

    if as_json:
        typer.echo(json.dumps({"change_id": change_id, "moves": [m.as_json() for m in moves]}, indent=2))
        return
    verb = "moves" if change_id else "would move"
    for m in moves:
        if m.skipped:
            typer.echo(f"  {m.subscription_id} (user {m.user_id}): not moved, {m.skipped}")
            continue
        typer.echo(f"  {m.subscription_id} (user {m.user_id}) {verb} on {m.as_json()['switch_on']}: "
                   f"{money.format_amount(m.from_amount, m.currency)} → {money.format_amount(m.to_amount, m.currency)}"
                   f", notice on {m.as_json()['notice_on']}")
    moving = sum(1 for m in moves if not m.skipped)
    typer.echo(f"tally: {moving} subscription(s) {verb}" + (f" (price change {change_id})" if change_id else
                                                              " (dry run: nothing changed)"))
