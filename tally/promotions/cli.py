"""``tally promo create | list | deactivate``: promotion codes from the command line (the same as
``/admin/promotions``). Beside a zero-config ``tally serve`` they use its sandbox, as ``tally sync`` does."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from ..config import Settings
from ..errors import TallyError

promo_app = typer.Typer(help="Promotion codes buyers type on Checkout.", no_args_is_help=True)


def _run(work: Any) -> Any:
    """Run ``work(services)`` with Tally's database and Stripe client; Tally's errors become one plain line."""
    from ..runtime import prepare
    from ..stripe_gateway import close_client

    runtime = prepare(Settings(), start_sandbox=False)
    services = runtime.services(run_worker=False, pool_size=2)

    async def main() -> Any:
        try:
            return await work(services)
        finally:
            await services.db.dispose()
            await close_client(services.stripe)

    try:
        return asyncio.run(main())
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _decimal(value: str | None, option: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint=option) from None


@promo_app.command("create")
def create(
    code: Annotated[str, typer.Option(help="what buyers type, e.g. LAUNCH20")],
    percent_off: Annotated[str | None, typer.Option(help="percentage off, e.g. 20")] = None,
    amount_off: Annotated[int | None, typer.Option(help="amount off in minor units (500 = 5.00 USD)")] = None,
    currency: Annotated[str | None, typer.Option(help="currency of --amount-off")] = None,
    duration: Annotated[str, typer.Option(help="once | repeating | forever (subscriptions)")] = "once",
    months: Annotated[int | None, typer.Option(help="months of a repeating discount")] = None,
    max_redemptions: Annotated[int | None, typer.Option(help="times the code can be used in all")] = None,
    expires: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="last day it works (UTC)")] = None,
    first_time_only: Annotated[bool, typer.Option("--first-time-only", help="only on a buyer's first order")] = False,
    plans: Annotated[list[str] | None, typer.Option("--plans", help="only these plans (repeatable)")] = None,
    packs: Annotated[list[str] | None, typer.Option("--packs", help="only these packs (repeatable)")] = None,
) -> None:
    """Create a coupon and its promotion code in Stripe."""
    from ..catalog.service import load_catalog
    from ..subscriptions.plans import plan_book
    from .service import PromotionSpec, create_promotion, describe

    settings = Settings()
    spec = PromotionSpec(code=code, duration=duration, percent_off=_decimal(percent_off, "--percent-off"),
                         amount_off=amount_off, currency=currency, months=months, max_redemptions=max_redemptions,
                         expires=expires.date() if expires else None, first_time_only=first_time_only,
                         plans=tuple(_split(plans)), packs=tuple(_split(packs)))

    async def work(services: Any) -> dict[str, Any]:
        return await create_promotion(services.stripe, load_catalog(settings.catalog_path), plan_book(settings),
                                      spec, today=datetime.now(UTC).date())

    promo = _run(work)
    typer.echo(f"tally: promotion code {promo['code']} ({promo['id']}): {describe(promo)}")


def _split(values: list[str] | None) -> list[str]:
    """``--packs mega --packs plus`` or ``--packs mega,plus``."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


@promo_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every promotion code: status, discount, redemptions, and what Tally's orders paid with it."""
    from .view import promotion_rows

    async def work(services: Any) -> list[dict[str, Any]]:
        return await promotion_rows(services.db, services.stripe)

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("tally: no promotion codes yet (`tally promo create --code LAUNCH20 --percent-off 20`)")
    for row in rows:
        limit = f"/{row['max_redemptions']}" if row["max_redemptions"] else ""
        typer.echo(f"{row['code']:<16} {row['status']:<9} {row['discount']:<28} used {row['times_redeemed']}"
                   f"{limit}  revenue {row['revenue_text'] or '-'}  discount given {row['discount_given_text'] or '-'}"
                   + (f"  expires {row['expires']}" if row["expires"] else "")
                   + (f"  only {', '.join(row['restricted_to'])}" if row["restricted_to"] else "")
                   + ("  first order only" if row["first_time_only"] else ""))


@promo_app.command("deactivate")
def deactivate(code: Annotated[str, typer.Argument(help="the code, e.g. LAUNCH20")]) -> None:
    """Stop a code from being used again (orders already discounted keep their discount)."""
    from . import service

    async def work(services: Any) -> dict[str, Any]:
        return await service.deactivate(services.stripe, code)

    promo = _run(work)
    typer.echo(f"tally: promotion code {promo['code']} ({promo['id']}) is inactive")



