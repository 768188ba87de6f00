"""Background work on the same PostgreSQL: procrastinate tasks, run by ``tally worker`` processes or by
the worker that ``tally serve`` runs in-process. Each domain declares its tasks on a ``Blueprint`` in its
``tasks.py`` (``build_blueprint(settings)``, a fresh blueprint per app, or a module-level ``blueprint``);
``make_job_app`` gathers them."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
from collections.abc import Iterator
from typing import Any

import procrastinate

from .db import libpq_url

# Domains whose tasks.py declares ``blueprint``.
TASK_MODULES = ("tally.webhooks.tasks", "tally.subscriptions.tasks", "tally.email.tasks")


def make_job_app(database_url: str, settings: Any = None) -> procrastinate.App:
    concurrency = getattr(settings, "worker_concurrency", 8)
    # The pool serves the worker's fetch/finish queries and, in the API, the webhook receiver's inbox
    # transactions (see tally.webhooks.service.store_event).
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
    return app


class WorkerRunner:
    """Owns the job app's connection pool; optionally runs a worker inside the API process."""

    def __init__(self, services: object) -> None:
        self.services = services
        self.job_app = make_job_app(services.db.url, services.settings)  # type: ignore[attr-defined]
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, run_worker: bool) -> None:
        await self.job_app.open_async()
        if run_worker:
            self._task = asyncio.create_task(self.run(), name="tally-worker")

    async def run(self) -> None:
        settings = self.services.settings  # type: ignore[attr-defined]
        with bind_services(self.services):
            await self.job_app.run_worker_async(
                concurrency=settings.worker_concurrency, install_signal_handlers=False,
                listen_notify=True, wait=True,
                # The inbox row is the record of an event; a finished job is only queue state. Deleting
                # it keeps the jobs table (and procrastinate's fetch query) small under load.
                delete_jobs="successful")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.job_app.close_async()


# Tasks reach the database and Stripe through the services of the process that runs them.
_services: contextvars.ContextVar[object] = contextvars.ContextVar("tally_services")


@contextlib.contextmanager
def bind_services(services: object) -> Iterator[None]:
    token = _services.set(services)
    try:
        yield
    finally:
        _services.reset(token)


def current_services() -> Any:
    return _services.get()
