"""``uvicorn --factory bench.tally_asgi:create --workers N``: Tally's API (no in-process worker) from the
environment, the way a multi-process deployment runs it."""

from __future__ import annotations

from fastapi import FastAPI

from tally.app import create_app
from tally.config import Settings
from tally.process import freeze_startup_objects
from tally.runtime import prepare


def create() -> FastAPI:
    runtime = prepare(Settings(), start_sandbox=False, migrate=False)
    app = create_app(runtime.services(run_worker=False))
    freeze_startup_objects()  # as `tally serve` does
    return app
