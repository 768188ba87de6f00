"""``tally.deps``: a route's ``SessionDep`` is one transaction, committed before the answer leaves and rolled
back when the route raises; the typed reads give routes what ``install_state`` put on the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tally.config import Settings
from tally.db import Database, sqlalchemy_url
from tally.deps import DatabaseDep, SessionDep, SettingsDep, install_state, services_of
from tally.errors import Conflict, install_error_handlers
from tally.services import Services, bind_services, current_services
from tally.stripe_gateway import SANDBOX_KEY, close_client, make_client


@pytest.fixture
async def services(own_database_url: str) -> AsyncIterator[Services]:
    settings = Settings(TALLY_DATABASE_URL=own_database_url, STRIPE_SECRET_KEY=SANDBOX_KEY)
    db = Database(sqlalchemy_url(own_database_url), pool_size=2)
    client = make_client(SANDBOX_KEY, "http://127.0.0.1:1")  # never called here
    async with db.transaction() as session:
        # Deferred: a duplicate fails at COMMIT, which shows when the commit happens.
        await session.execute(text("CREATE TABLE deps_probe (note text NOT NULL, "
                                   "CONSTRAINT deps_probe_once UNIQUE (note) DEFERRABLE INITIALLY DEFERRED)"))
    try:
        yield Services(settings=settings, db=db, stripe=client, webhook_secrets=[])
    finally:
        await db.dispose()
        await close_client(client)


def probe_app(services: Services) -> FastAPI:
    app = FastAPI()
    install_state(app, services)
    install_error_handlers(app)

    @app.post("/notes/{note}")
    async def write(note: str, session: SessionDep) -> dict[str, str]:
        await session.execute(text("INSERT INTO deps_probe VALUES (:note)"), {"note": note})
        if note == "twice":
            await session.execute(text("INSERT INTO deps_probe VALUES (:note)"), {"note": note})
        if note == "refused":
            raise Conflict("The route refused after writing.")
        return {"written": note}

    @app.get("/notes")
    async def read(db: DatabaseDep, settings: SettingsDep) -> dict[str, object]:
        async with db.transaction() as session:
            notes = (await session.execute(text("SELECT note FROM deps_probe ORDER BY note"))).scalars().all()
        return {"notes": list(notes), "same_settings": settings is services.settings}

    return app


async def test_a_session_route_commits_before_its_answer_and_rolls_back_when_it_raises(services: Services) -> None:
    app = probe_app(services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally") as http:
        written = await http.post("/notes/kept")
        assert written.status_code == 200 and written.json() == {"written": "kept"}
        # Read on another connection: the row is there as soon as the answer is.
        assert (await http.get("/notes")).json() == {"notes": ["kept"], "same_settings": True}

        refused = await http.post("/notes/refused")
        assert refused.status_code == 409
        assert (await http.get("/notes")).json()["notes"] == ["kept"]  # the refused route's insert rolled back

        # The commit fails after the route returned: the caller is told (a 500), never a 200 for lost work.
        failed = await http.post("/notes/twice")
        assert failed.status_code == 500
        assert (await http.get("/notes")).json()["notes"] == ["kept"]


async def test_install_state_and_the_task_context_hand_out_the_services_they_were_given(services: Services) -> None:
    app = probe_app(services)
    assert services_of(app) is services
    with bind_services(services):
        assert current_services() is services
    with pytest.raises(LookupError):
        current_services()  # outside a worker, no services are bound
