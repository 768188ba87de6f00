"""The price-change notice scan in the worker, every few seconds (an idle scan is one probe of a partial index)."""

from __future__ import annotations

import time

import procrastinate

from ..config import Settings
from ..subscriptions.plans import plan_book
from ..services import current_services
from . import notices


def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()

    @blueprint.periodic(cron="* * * * * */5", periodic_id="price_notices")
    @blueprint.task(name="send_price_notices", pass_context=False)
    async def send_price_notices(timestamp: int) -> int:
        services = current_services()
        return await notices.send_due_notices(services.db, services.settings, plan_book(services.settings),
                                              now=int(time.time()))

    return blueprint
