"""The periodic reconciliation: every ``TALLY_SYNC_EVERY_MINUTES`` (default 5; 0 turns it off) the worker runs
``service.sync`` with a grace period (``TALLY_SYNC_GRACE_SECONDS``: younger events and objects are left to their
webhooks), so a webhook outage of any length under Stripe's 30 days of events heals
on its own, while deliveries still on their way are left to arrive."""

from __future__ import annotations

import procrastinate

from ..config import Settings
from ..services import current_services
from . import service

def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()
    minutes = settings.sync_every_minutes
    if not 0 < minutes < 60:
        return blueprint

    @blueprint.periodic(cron=f"*/{minutes} * * * *", periodic_id="sync")
    @blueprint.task(name="sync", pass_context=True, queueing_lock="reconcile:sync")
    async def sync(context: procrastinate.JobContext, timestamp: int) -> dict[str, int]:
        services = current_services()
        assert context.app is not None
        report = await service.sync(services.db, context.app, services.stripe, services.settings,
                                    grace=services.settings.sync_grace_seconds)
        return {"events_stored": len(report.events_stored), "repaired": len(report.repaired)}

    return blueprint
