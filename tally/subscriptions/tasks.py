"""Subscription jobs in the worker: the dunning scan, every few seconds (it reads only due rows through a
partial index, so an idle scan costs one index probe)."""

from __future__ import annotations

import time

import procrastinate

from ..config import Settings
from ..services import current_services
from . import dunning


def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()

    @blueprint.periodic(cron="* * * * * */5", periodic_id="dunning")
    @blueprint.task(name="send_due_notices", pass_context=False)
    async def send_due_notices(timestamp: int) -> int:
        services = current_services()
        return await dunning.send_due_notices(services.db, services.stripe, services.settings, now=int(time.time()))

    return blueprint
