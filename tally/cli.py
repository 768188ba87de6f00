"""The ``tally`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated, Any

import typer

from .config import Settings
from .ledger.cli import credits_app
from .reversals.cli import disputes


class _Tally(typer.Typer):
    """The `tally` command: an expected failure (``tally.cli_failures``) is one line on stderr, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            from .cli_failures import explain

            explained = explain(exc)
            if explained is None:
                raise
            message, code = explained
            typer.echo(f"tally: {message}", err=True)
            sys.exit(code)


app = _Tally(help="Tally: credits and subscriptions through Stripe.", no_args_is_help=True, add_completion=False)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    worker: Annotated[bool, typer.Option(help="run the background worker in this process")] = True,
) -> None:
    """Run the API (and, by default, a worker). With no settings: embedded PostgreSQL + offline Stripe."""
    import uvicorn

    from .app import create_app
    from .banner import banner
    from .process import freeze_startup_objects, stopped_cleanly
    from .runtime import prepare

    if "TALLY_PUBLIC_URL" not in os.environ:
        os.environ["TALLY_PUBLIC_URL"] = f"http://{host}:{port}"
    settings = Settings()
    key_given = settings.api_key is not None
    with stopped_cleanly():
        runtime = prepare(settings)
        try:
            application = create_app(runtime.services(run_worker=worker))
            if sys.stdout.isatty():
                typer.echo(banner(settings, stripe_api_base=runtime.stripe_api_base, worker=worker,
                                  generated_key=not key_given))
            else:
                for note in runtime.notes:
                    typer.echo(f"tally: {note}")
                typer.echo(f"tally: serving on {settings.public_url}  (open it in a browser; Ctrl+C stops)")
            freeze_startup_objects()
            uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
        finally:
            runtime.stop()


@app.command()
def worker(concurrency: Annotated[int, typer.Option(help="jobs at once")] = 8) -> None:
    """Run background workers only (scale out: start as many as you like on the same database)."""
    from .observability.routes import configure_logs
    from .process import freeze_startup_objects, run_until_signalled, stopped_cleanly
    from .runtime import prepare
    from .stripe_gateway import close_client
    from .worker import WorkerRunner

    settings = Settings()
    settings.worker_concurrency = concurrency

    async def main() -> None:
        configure_logs(settings)
        runner = WorkerRunner(services)
        await runner.start(run_worker=False)
        freeze_startup_objects()
        try:
            await run_until_signalled(runner.run())
        finally:
            await runner.stop()
            await services.db.dispose()
            await close_client(services.stripe)

    with stopped_cleanly():
        runtime = prepare(settings, start_sandbox=False, create_data=False)
        try:
            services = runtime.services(run_worker=True, pool_size=max(4, concurrency))
            typer.echo(f"tally worker: {concurrency} at once; " + "; ".join(runtime.notes))
            asyncio.run(main())
        finally:
            runtime.stop()


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from .db import resolve_database_url
    from .migrate import upgrade

    upgrade(resolve_database_url(Settings()))
    typer.echo("tally: database is up to date")


@app.command("admin-key")
def admin_key() -> None:
    """Print the operator's API key (for /admin, /metrics and the admin API): TALLY_API_KEY, else, in sandbox
    mode, the one kept in the data folder (generated there by the first `tally serve`)."""
    from .data_folder import operator_api_key
    from .db import NoTallyData

    settings = Settings()
    if not settings.api_key and not settings.sandbox_mode:
        typer.echo("tally: with a real Stripe key no API key is generated: set TALLY_API_KEY (32+ random "
                   "characters) for Tally and your backend", err=True)
        raise typer.Exit(1)
    key = operator_api_key(settings, create=settings.data_dir.is_dir())
    if key is None:
        raise NoTallyData(settings.data_dir)
    typer.echo(key)


# --help goes through to the sandbox's own parser, which lists its flags.
@app.command(add_help_option=False, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Run the offline Stripe sandbox alone (same flags as `python -m stripe_sandbox`; see --help)."""
    from stripe_sandbox.cli import main

    main(list(ctx.args), prog="tally sandbox")


events_app = typer.Typer(help="The webhook inbox.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("replay")
def events_replay(event_id: Annotated[str, typer.Argument(help="Stripe event id (evt_...)")]) -> None:
    """Set a webhook event back to pending and queue it again (after fixing what made it fail)."""
    from .errors import TallyError
    from .runtime import prepare
    from .webhooks.cli import replay_event

    runtime = prepare(Settings(), start_sandbox=False, create_data=False)
    try:
        status = asyncio.run(replay_event(runtime, event_id))
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"tally: {event_id} is {status} and queued; a worker will process it")


catalog_app = typer.Typer(help="The catalog of packs and plans.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("sync")
def catalog_sync(
    check: Annotated[bool, typer.Option("--check", help="only validate the catalog file")] = False,
) -> None:
    """Validate the catalog (TALLY_CATALOG) and create/update its Products and Prices in Stripe."""
    from .catalog.service import CatalogError, SyncResult, load_catalog, sync_to_stripe
    from .errors import TallyError
    from .stripe_gateway import SANDBOX_KEY, close_client, make_client

    settings = Settings()
    try:
        catalog = load_catalog(settings.catalog_path)
    except CatalogError as exc:
        typer.echo(f"tally: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"tally: catalog {settings.catalog_path}: {len(catalog.packs)} packs")
    if check:
        return
    if settings.sandbox_mode and not settings.stripe_api_base:
        typer.echo("tally: no STRIPE_SECRET_KEY: `tally serve` syncs the catalog to its sandbox at start-up "
                   "(set STRIPE_API_BASE to sync a sandbox that is already running)")
        return
    async def main() -> SyncResult:
        client = make_client(settings.stripe_secret_key or SANDBOX_KEY, settings.stripe_api_base)
        try:
            return await sync_to_stripe(client, catalog)
        finally:
            await close_client(client)

    try:
        result = asyncio.run(main())
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None
    for lookup_key, price_id in result.prices.items():
        typer.echo(f"  {lookup_key} → {price_id}")
    typer.echo(f"tally: catalog synced ({len(result.created)} objects created)")


from .promotions.cli import promo_app  # noqa: E402 - registered beside the other sub-apps

app.add_typer(promo_app, name="promo")
from .price_changes.cli import plans_app  # noqa: E402

app.add_typer(plans_app, name="plans")

ledger_app = typer.Typer(help="The credits ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def ledger_check(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    limit: Annotated[int, typer.Option(help="findings listed per kind (all are counted)")] = 50,
) -> None:
    """Verify the ledger's invariants (read-only; safe on a live database): entries sum to zero and to
    each balance, balance_after chains, invoice numbers without gaps, no orphan records. Exit code 1 on
    any finding."""
    import json

    from .db import Database, resolve_database_url
    from .ledger.check import Report, format_report, run_check

    async def main() -> Report:
        db = Database(resolve_database_url(Settings(), create=False), pool_size=1)
        try:
            return await run_check(db, limit=limit)
        finally:
            await db.dispose()

    report = asyncio.run(main())
    typer.echo(json.dumps(report.as_json(), indent=2) if as_json else format_report(report))
    if not report.ok:
        raise typer.Exit(1)


app.add_typer(credits_app, name="credits")
app.command("disputes")(disputes)


@app.command()
def audit() -> None:
    """The P0 security checklist (keys from the environment, live/test separation, webhook secret, HTTPS
    public URL, rate limits, CSRF, idempotency keys), pass/fail against this configuration. Exit code 1
    on any failed item."""
    from .security.audit import report, run

    checks = run(Settings())
    typer.echo(report(checks))
    if not all(c.passed for c in checks):
        raise typer.Exit(1)


@app.command()
def sync(
    since: Annotated[int | None,
                     typer.Option(help="unix time to list events from (default: the stored cursor)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Reconcile with Stripe: store events that never arrived (last 30 days) and credit paid orders and
    invoices missing from the ledger, exactly once; prints what it repaired. The worker also runs it every
    TALLY_SYNC_EVERY_MINUTES."""
    import json

    from .errors import TallyError
    from .reconcile.cli import format_report, run_sync
    from .runtime import prepare

    settings = Settings()
    if settings.sandbox_mode and not settings.stripe_api_base:
        typer.echo("tally: no STRIPE_SECRET_KEY: the sandbox lives inside `tally serve`, whose worker syncs "
                   "it; set STRIPE_API_BASE to sync a sandbox that is already running", err=True)
        raise typer.Exit(1)
    runtime = prepare(settings, start_sandbox=False, create_data=False)
    try:
        report = asyncio.run(run_sync(runtime, since=since))
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report.as_json(), indent=2) if as_json else format_report(report))


@app.command()
def doctor(
    url: Annotated[str | None, typer.Option(help="the running Tally (default: TALLY_PUBLIC_URL)")] = None,
    go_live: Annotated[bool, typer.Option("--go-live", help="add the go-live checklist")] = False,
    route: Annotated[list[str] | None, typer.Option(
        help="a call your frontend makes, e.g. 'POST /api/create-checkout-session' (repeatable)")] = None,
    origin: Annotated[list[str] | None, typer.Option(
        help="a browser origin your frontend runs on, e.g. http://localhost:5173 (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check a running Tally and its Stripe account: a score out of 8 with reasons and fixes (webhook
    endpoint and secret, idempotency, portal, tax, retries, PCI scope, keys, monitoring), plus what a
    frontend meets (404/405/401/CORS). Exit code 1 under 5/8."""
    import json

    from .doctor.cli import DoctorFailed, examine, unreachable
    from .doctor.frontend import parse_route
    from .doctor.runner import format_report

    settings = Settings()
    base = (url or settings.public_url).rstrip("/")
    try:
        routes = [parse_route(r) for r in route or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--route") from None
    try:
        report = asyncio.run(examine(settings, base, go_live=go_live, routes=routes, origins=origin or None))
    except DoctorFailed as exc:
        report = unreachable(base, str(exc))
    typer.echo(json.dumps(report.as_json(), indent=2) if as_json else format_report(report))
    if not report.healthy:
        raise typer.Exit(1)
