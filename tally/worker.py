"""Background work on the same PostgreSQL: procrastinate tasks, run by ``tally worker`` processes or by
the worker that ``tally serve`` runs in-process. Each domain declares its tasks on a ``Blueprint`` in its
``tasks.py`` (``build_blueprint(settings)``, a fresh blueprint per app, or a module-level ``blueprint``);
``make_job_app`` gathers them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Any

import procrastinate

from .db import libpq_url
from .observability.logging import quiet_periodic_tasks
# current_services: still imported from here by tally.webhooks.tasks; the other tasks modules import it from
# tally.services, which (unlike this module, which imports every tasks module) imports none of them.
from .services import Services, bind_services, current_services  # noqa: F401

log = logging.getLogger("tally.worker")

RESTART_SECONDS = 1.0  # before starting procrastinate's worker again after it ended on its own

# Domains whose tasks.py declares ``blueprint``.
# (Webhook events are no jobs: the inbox workers claim them from the inbox table, ``tally.webhooks.inbox``.)
TASK_MODULES = ("tally.subscriptions.tasks", "tally.email.tasks", "tally.reconcile.tasks", "tally.ledger.tasks",
                "tally.price_changes.tasks")


def make_job_app(database_url: str, settings: Any = None) -> procrastinate.App:
    concurrency = getattr(settings, "worker_concurrency", 8)
    # The pool serves procrastinate's own queries and the deferrals of tasks (retries, emails).
    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(database_url), min_size=2,
                                               max_size=max(10, concurrency + 4))
    app = procrastinate.App(connector=connector)
    for module_name in TASK_MODULES:
        module = importlib.import_module(module_name)
        build = getattr(module, "build_blueprint", None)
        if build is not None:
            if settings is None:
                from .config import Settings

                settings = Settings()
            blueprint = build(settings)
        else:
            blueprint = module.blueprint
        app.add_tasks_from(blueprint, namespace=module_name.split(".")[1])
    quiet_periodic_tasks({periodic.task.name for periodic in app.periodic_registry.periodic_tasks.values()})
    return app


class WorkerRunner:
    """Owns the job app's connection pool; optionally runs a worker inside the API process."""

    def __init__(self, services: Services) -> None:
        from .webhooks.dispatch import load_handlers
        from .webhooks.inbox import InboxReceiver

        load_handlers()  # a handler module that cannot be imported stops the worker here (HandlerModuleError)
        self.services = services
        self.job_app = make_job_app(services.db.url, services.settings)
        self.inbox = InboxReceiver(services.db)  # the webhook receiver's
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, run_worker: bool) -> None:
        await self.job_app.open_async()
        await self.inbox.open()
        if run_worker:
            self._task = asyncio.create_task(self.run(), name="tally-worker")

    async def run(self) -> None:
        """Procrastinate's worker (periodic tasks, emails) beside the webhook inbox workers, which claim events
        from the inbox table, retries included (``tally.webhooks.inbox`` says why not one job per event)."""
        from .webhooks.inbox import InboxWorker

        settings = self.services.settings
        inbox = InboxWorker(self.services, concurrency=settings.worker_concurrency)
        with bind_services(self.services):
            async with asyncio.TaskGroup() as group:
                group.create_task(inbox.run(), name="tally-inbox")
                group.create_task(self._run_jobs(settings.worker_concurrency), name="tally-jobs")

    async def _run_jobs(self, concurrency: int) -> None:
        """Procrastinate's worker, started again whenever it ends on its own. It ends for good when a
        database connection it holds is killed (a database restart, a failover, ``pg_terminate_backend``):
        its LISTEN or periodic side task fails and it stops, or a failed fetch raises. Without this the
        process would live on with no periodic tasks or emails, or exit."""
        while True:
            try:
                await self.job_app.run_worker_async(
                    concurrency=concurrency, install_signal_handlers=False, listen_notify=True, wait=True,
                    # A finished job is only queue state (the inbox row is the record of an event):
                    # deleting it keeps the jobs table small.
                    delete_jobs="successful")
                log.warning("job worker stopped; starting it again in %.0f s", RESTART_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the worker outlives database outages
                log.warning("job worker failed, starting it again in %.0f s: %r", RESTART_SECONDS, exc)
            await asyncio.sleep(RESTART_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.inbox.close()
        await self.job_app.close_async()
