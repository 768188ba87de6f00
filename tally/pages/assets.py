"""Serving the pages' stylesheet and script from Tally itself (at ``/assets``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static"


def mount_assets(app: FastAPI) -> None:
    app.mount("/assets", StaticFiles(directory=ASSETS), name="assets")
