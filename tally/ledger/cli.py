"""``tally credits grant`` and ``tally credits adjust``: the operator's movements from a terminal, through the same
rules as ``POST /v1/admin/credits/…`` (``tally.ledger.operator``), on the database ``tally ledger check`` uses.
The database and ledger modules are imported when a command runs, so that ``tally --help`` stays quick."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ..config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from .operator import OperatorMovement

credits_app = typer.Typer(help="Give or take a user's credits (shown to them with the reason).", no_args_is_help=True)

Reason = Annotated[str, typer.Option("--reason", help="why: the user sees it in their transactions")]
Key = Annotated[str | None, typer.Option(
    "--key", help="idempotency key: the same command with the same key moves credits once (default: a new key)")]


def parse_expiry(value: str | None) -> datetime | None:
    """``2027-01-31``: usable through that UTC day (they lapse at 00:00 UTC the next day); an ISO date-time with
    an offset is taken as it is, one without as UTC."""
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value) + timedelta(days=1), time(), UTC)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use a date (2027-01-31) or an ISO date-time (2027-01-31T18:00:00Z)",
                                 param_hint="--expires") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_delta(value: str) -> int:
    """``+500``, ``500`` or ``-500`` (negative numbers are arguments here, not options)."""
    try:
        return int(value.replace("_", ""), 10)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a whole number of credits, e.g. +500 or -200",
                                 param_hint="AMOUNT") from None


def _run(move: Callable[[AsyncSession], Awaitable[OperatorMovement]]) -> OperatorMovement:
    from ..db import Database, resolve_database_url
    from ..errors import TallyError

    async def main() -> OperatorMovement:
        db = Database(resolve_database_url(Settings()), pool_size=1)
        try:
            async with db.transaction() as session:
                return await move(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None


def describe(moved: OperatorMovement) -> str:
    verb = "gave" if moved.amount > 0 else "took"
    what = f"{abs(moved.amount):,} {moved.category + ' ' if moved.category else ''}credits"
    expiry = f", expiring {moved.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moved.expires_at else ""
    head = "already done under this key: " if moved.replayed else ""
    return (f"tally: {head}{verb} {what} {'to' if moved.amount > 0 else 'from'} {moved.user_id}{expiry} "
            f"(“{moved.reason}”; transaction {moved.transaction_id}, key {moved.key}). "
            f"Balance {moved.balance:,}, available {moved.available:,}.")


@credits_app.command("grant")
def grant(
    user: Annotated[str, typer.Argument(metavar="USER", help="the app's user id")],
    amount: Annotated[int, typer.Argument(min=1, metavar="AMOUNT", help="credits to give")],
    reason: Reason,
    promotional: Annotated[bool, typer.Option("--promotional", help="promotional credits (default: paid)")] = False,
    expires: Annotated[str | None, typer.Option(
        "--expires", metavar="DATE", help="last UTC day they can be used (2027-01-31), or an ISO date-time; "
                                          "default: never")] = None,
    key: Key = None,
) -> None:
    """Give USER AMOUNT credits, paid (default) or --promotional, expiring after --expires or never."""
    from . import operator

    expires_at = parse_expiry(expires)
    moved = _run(lambda session: operator.grant(session, user_id=user, amount=amount, reason=reason, key=key,
                                                category="promotional" if promotional else "paid",
                                                expires_at=expires_at))
    typer.echo(describe(moved))


@credits_app.command("adjust", context_settings={"ignore_unknown_options": True})
def adjust(
    user: Annotated[str, typer.Argument(metavar="USER", help="the app's user id")],
    amount: Annotated[str, typer.Argument(metavar="±AMOUNT", help="+N adds paid credits, -N takes credits")],
    reason: Reason,
    key: Key = None,
) -> None:
    """Correct USER's credits by ±AMOUNT: up is a paid grant that never expires; down takes at most what the user
    can spend."""
    from . import operator

    delta = parse_delta(amount)
    moved = _run(lambda session: operator.adjust(session, user_id=user, delta=delta, reason=reason, key=key))
    typer.echo(describe(moved))
