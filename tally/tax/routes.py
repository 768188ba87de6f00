"""Start-up of tax: with ``TALLY_TAX=automatic`` in sandbox mode, ``tally serve`` gives the sandbox's Stripe Tax a
head office (``TALLY_TAX_HEAD_OFFICE``, default DE) so that tax is configured out of the box, as ``tally doctor``
checks. With a real key Tally never changes the account's tax settings: that is the operator's (Dashboard → Tax).
No routes of its own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from ..deps import settings_of, stripe_of
from .service import ensure_sandbox_tax_settings

log = logging.getLogger("tally.tax")


@asynccontextmanager
async def tax_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = settings_of(app)
    if settings.sandbox_mode and settings.tax_mode == "automatic":
        try:
            await ensure_sandbox_tax_settings(stripe_of(app), settings.tax_head_office)
        except Exception as exc:  # noqa: BLE001 - the sandbox may still be starting; `tally doctor` will say so
            log.warning("could not set up the sandbox's tax settings at start-up: %s", exc)
    yield


router = APIRouter(lifespan=tax_lifespan)
