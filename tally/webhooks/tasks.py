"""Webhook jobs run by the worker: ``process_event`` (one per stored event) and a sweeper every minute.

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
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from ..config import Settings
from ..worker import current_services
from . import service

log = logging.getLogger("tally.webhooks")

NAMESPACE_TASK = "process_event"  # full name: webhooks:process_event (service.PROCESS_TASK)


class Backoff(BaseRetryStrategy):
    """Exponential backoff, ``base * 2**n`` seconds capped at ``cap``, for ``max_tries`` runs in all.
    With the defaults (6 tries, base 2 s) an event is retried over about a minute, long enough for an
    event that arrived before its data to find it, short enough that a real failure surfaces soon."""

    def __init__(self, max_tries: int, base: float = 2.0, cap: float = 3600.0) -> None:
        self.max_tries = max(1, max_tries)
        self.base = base
        self.cap = cap

    def is_final(self, job: Job) -> bool:
        return job.attempts + 1 >= self.max_tries  # job.attempts counts the earlier runs

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if self.is_final(job):
            return None
        return RetryDecision(retry_in={"seconds": min(self.cap, self.base * 2 ** job.attempts)})


def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()
    backoff = Backoff(settings.webhook_max_attempts)

    @blueprint.task(name=NAMESPACE_TASK, pass_context=True, retry=backoff)
    async def process_event(context: procrastinate.JobContext, event_id: str) -> str:
        services = current_services()
        try:
            outcome = await service.process_event(services.db, services, event_id)
        except Exception as exc:
            final = context.job is not None and backoff.is_final(context.job)
            await service.record_failure(services.db, event_id, exc, final=final)
            log.warning("webhook %s failed (attempt %s%s): %r", event_id,
                        (context.job.attempts + 1) if context.job else "?", ", final" if final else "", exc)
            raise
        return outcome.status

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
