"""Webhook jobs run by the worker: ``process_event`` (a retry after a failure, scheduled with backoff, or a
swept event) and a sweeper every minute. New events do not go through jobs: the inbox workers
(``tally.webhooks.inbox``) claim them straight from the inbox table.

``build_blueprint`` makes a fresh ``Blueprint`` per job app. Procrastinate's ``add_tasks_from`` rewrites
the tasks of the blueprint it is given (their names and the app they defer into), so one module-level
blueprint shared by several apps in a process (tests, the benchmark) ends up renamed and bound to the last
app; a fresh one per app avoids that.
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from ..config import Settings
from ..worker import current_services
from . import service

log = logging.getLogger("tally.webhooks")

NAMESPACE_TASK = "process_event"  # full name: webhooks:process_event (service.PROCESS_TASK)


def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()

    @blueprint.task(name=NAMESPACE_TASK, pass_context=True)
    async def process_event(context: procrastinate.JobContext, event_id: str) -> str:
        """A failure does not fail the job: ``service.process_event`` records it on the event's row and
        schedules the next try itself (the backoff counts the event's attempts, whichever path made them)."""
        services = current_services()
        assert context.app is not None
        return (await service.process_event(services.db, services, context.app, event_id)).status

    @blueprint.periodic(cron="* * * * *", periodic_id="sweep")
    @blueprint.task(name="sweep", pass_context=True)
    async def sweep(context: procrastinate.JobContext, timestamp: int) -> int:
        """Belt and braces: jobs lost to a manual database edit, or held by a worker that died."""
        services = current_services()
        assert context.app is not None
        await _retry_stalled(context.app)
        return await service.sweep(services.db, context.app)

    return blueprint


async def _retry_stalled(app: procrastinate.App) -> None:
    stalled: Any = await app.job_manager.get_stalled_jobs(task_name=service.PROCESS_TASK)
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except AlreadyEnqueued:  # another job for the same event is already waiting
            pass
        except Exception as exc:  # noqa: BLE001 - one stuck job must not stop the sweep
            log.warning("could not retry stalled job %s: %r", job.id, exc)
