"""The email sender: every few seconds, deliver queued outbox rows by SMTP (nothing to do without an SMTP URL)."""

from __future__ import annotations

import procrastinate

from ..config import Settings
from ..services import current_services
from . import service


def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()

    @blueprint.periodic(cron="* * * * * */10", periodic_id="deliver")
    @blueprint.task(name="deliver", pass_context=False)
    async def deliver(timestamp: int) -> int:
        services = current_services()
        if not service.delivers_by_smtp(services.settings):
            return 0
        return await service.deliver_queued(services.db, services.settings)

    return blueprint
