"""Ledger jobs in the worker, every few seconds: expire the grants and release the holds whose time is up
(each scan reads only due rows through a partial index, ``ix_credit_grants_expiring`` and
``ix_credit_holds_open_expiry``, so an idle scan costs two index probes), and fold the dashboard's deltas into
its counters."""

from __future__ import annotations

import logging

import procrastinate

from ..config import Settings
from ..services import current_services
from . import expiry, service, spending

log = logging.getLogger("tally.ledger")


def build_blueprint(settings: Settings) -> procrastinate.Blueprint:
    blueprint = procrastinate.Blueprint()

    @blueprint.periodic(cron="* * * * * */5", periodic_id="expire")
    @blueprint.task(name="expire_credits", pass_context=False)
    async def expire_credits(timestamp: int) -> int:
        db = current_services().db
        holds = await spending.expire_holds(db)
        grants = await expiry.expire_due(db)
        (log.info if holds or grants else log.debug)("expired %d holds and %d grants", holds, grants)
        return holds + grants

    @blueprint.periodic(cron="* * * * * */5", periodic_id="fold_totals")
    @blueprint.task(name="fold_credit_totals", pass_context=False)
    async def fold_credit_totals(timestamp: int) -> int:
        async with current_services().db.transaction() as session:
            return await service.fold_totals(session)

    return blueprint
