"""The ``tally`` command."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from .config import Settings

app = typer.Typer(help="Tally: credits and subscriptions through Stripe.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    worker: Annotated[bool, typer.Option(help="run the background worker in this process")] = True,
) -> None:
    """Run the API (and, by default, a worker). With no settings: embedded PostgreSQL + offline Stripe."""
    import uvicorn

    from .app import create_app
    from .runtime import prepare

    if "TALLY_PUBLIC_URL" not in os.environ:
        os.environ["TALLY_PUBLIC_URL"] = f"http://{host}:{port}"
    settings = Settings()
    runtime = prepare(settings)
    application = create_app(runtime.services(run_worker=worker))
    for note in runtime.notes:
        typer.echo(f"tally: {note}")
    typer.echo(f"tally: serving on {settings.public_url}  (open it in a browser; Ctrl+C stops)")
    try:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    finally:
        runtime.stop()


@app.command()
def worker(concurrency: Annotated[int, typer.Option(help="jobs at once")] = 8) -> None:
    """Run background workers only (scale out: start as many as you like on the same database)."""
    from .runtime import prepare
    from .worker import WorkerRunner

    settings = Settings()
    settings.worker_concurrency = concurrency
    runtime = prepare(settings, start_sandbox=False)
    services = runtime.services(run_worker=True, pool_size=max(4, concurrency))

    async def main() -> None:
        runner = WorkerRunner(services)
        await runner.start(run_worker=False)
        try:
            await runner.run()
        finally:
            await runner.stop()
            await services.db.dispose()

    typer.echo(f"tally worker: {concurrency} at once; " + "; ".join(runtime.notes))
    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from .db import resolve_database_url
    from .migrate import upgrade

    upgrade(resolve_database_url(Settings()))
    typer.echo("tally: database is up to date")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Run the offline Stripe sandbox alone (same flags as `python -m stripe_sandbox`)."""
    from stripe_sandbox.cli import main

    main(list(ctx.args))


events_app = typer.Typer(help="The webhook inbox.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("replay")
def events_replay(event_id: Annotated[str, typer.Argument(help="Stripe event id (evt_...)")]) -> None:
    """Set a webhook event back to pending and queue it again (after fixing what made it fail)."""
    from .errors import TallyError
    from .runtime import prepare
    from .webhooks.cli import replay_event

    runtime = prepare(Settings(), start_sandbox=False)
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
    from .catalog.service import CatalogError, load_catalog, sync_to_stripe
    from .errors import TallyError
    from .stripe_gateway import SANDBOX_KEY, make_client

    settings = Settings()
    try:
        catalog = load_catalog(settings.catalog_path)
    except CatalogError as exc:
        typer.echo(f"tally: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"tally: catalog {settings.catalog_path}: {len(catalog.packs)} packs, {len(catalog.plans)} plans")
    if check:
        return
    if settings.sandbox_mode and not settings.stripe_api_base:
        typer.echo("tally: no STRIPE_SECRET_KEY: `tally serve` syncs the catalog to its sandbox at start-up "
                   "(set STRIPE_API_BASE to sync a sandbox that is already running)")
        return
    client = make_client(settings.stripe_secret_key or SANDBOX_KEY, settings.stripe_api_base)
    try:
        result = asyncio.run(sync_to_stripe(client, catalog))
    except TallyError as exc:
        typer.echo(f"tally: {exc.message}", err=True)
        raise typer.Exit(1) from None
    for lookup_key, price_id in result.prices.items():
        typer.echo(f"  {lookup_key} → {price_id}")
    typer.echo(f"tally: catalog synced ({len(result.created)} objects created)")
