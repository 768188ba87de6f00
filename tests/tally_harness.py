"""Running Tally for tests: a fresh PostgreSQL database (the machine's server when reachable, else the
embedded one), the offline Stripe sandbox, and the real app served over HTTP on a free port."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from sqlalchemy.engine import make_url

from stripe_sandbox import SandboxConfig, SandboxServer
from tally.app import create_app
from tally.config import Settings
from tally.db import embedded_database_url, sqlalchemy_url
from tally.migrate import upgrade
from tally.runtime import WEBHOOK_PATH, Runtime
from tally.stripe_gateway import SANDBOX_KEY

DEFAULT_EXTERNAL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Databases on which a test server's worker runs. Each test server has its own sandbox, so a second worker on the
# same database could take the first one's webhook events and re-fetch their objects from a sandbox that never
# made them (in production every worker talks to the same Stripe account).
_WORKER_DATABASES: set[str] = set()


def external_admin_url() -> str:
    """The external PostgreSQL server the tests create (and drop) their databases on: the server of
    ``TALLY_TEST_DATABASE_URL`` when it is set, else the machine's own at 127.0.0.1:5432. Never
    ``TALLY_DATABASE_URL``: that may be a real Tally's database, whose server the suite must not touch."""
    given = os.environ.get("TALLY_TEST_DATABASE_URL")
    if not given:
        return DEFAULT_EXTERNAL
    return make_url(sqlalchemy_url(given)).set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)


def external_postgres_reachable() -> bool:
    if os.environ.get("TALLY_TEST_DATABASE") == "embedded":
        return False
    admin = make_url(external_admin_url())
    try:
        with socket.create_connection((admin.host or "127.0.0.1", admin.port or 5432), timeout=1):
            pass
        with psycopg.connect(external_admin_url(), connect_timeout=3):
            return True
    except OSError:
        return False
    except psycopg.Error:
        return False


@contextmanager
def fresh_database(kind: str = "auto", *, migrated: bool = True) -> Iterator[str]:
    """A new database, migrated unless ``migrated`` is False; yields its SQLAlchemy URL. ``kind``: auto |
    external | embedded."""
    use_external = kind == "external" or (kind == "auto" and external_postgres_reachable())
    if use_external:
        name = f"tally_test_{uuid.uuid4().hex[:10]}"
        admin = external_admin_url()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(admin).set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False)
        try:
            if migrated:
                upgrade(url)
            yield url
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        # One embedded server per test run, in the run's own temporary folder (tests/leftovers.py stops it at
        # the end); a new database in it per call.
        base = embedded_database_url(Path(tempfile.gettempdir()) / "tally-test-embedded")
        name = f"tally_test_{uuid.uuid4().hex[:10]}"
        admin = base.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = base.replace("/postgres?", f"/{name}?")
        try:
            if migrated:
                upgrade(url)
            yield url
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TallyServer:
    """The real Tally app on a thread, wired to its own sandbox and database."""

    def __init__(self, database_url: str, *, run_worker: bool = True, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook_secret = "whsec_test_" + uuid.uuid4().hex
        self.api_key = "tally_test_api_key_" + uuid.uuid4().hex[:8]
        self.sandbox = SandboxServer(SandboxConfig(
            port=0, webhook_url=self.url + WEBHOOK_PATH, webhook_secret=self.webhook_secret,
            async_settle_seconds=1.0))
        # Logs: left to pytest's capture (shown with a failing test), not written among the progress dots.
        settings.setdefault("TALLY_LOG_FORMAT", "plain")
        self.settings = Settings(
            TALLY_DATABASE_URL=database_url, TALLY_PUBLIC_URL=self.url, TALLY_API_KEY=self.api_key,
            TALLY_JWT_SECRET="test-jwt-secret-" + "x" * 32, TALLY_DATA_DIR=tempfile.mkdtemp(prefix="tally-"),
            **settings)
        self.database_url = database_url
        self.run_worker = run_worker
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> TallyServer:
        if self.run_worker:
            if self.database_url in _WORKER_DATABASES:
                raise RuntimeError("another test server's worker runs on this database; give this one its own "
                                   "(tests.tally_harness.fresh_database) or run_worker=False")
            _WORKER_DATABASES.add(self.database_url)
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> TallyServer:
        self.sandbox.start()
        runtime = Runtime(self.settings, self.database_url, SANDBOX_KEY, self.sandbox.url, [self.webhook_secret])
        self.app = create_app(runtime.services(run_worker=self.run_worker))
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", access_log=False))
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("Tally did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.sandbox.stop()
        if self.run_worker:
            _WORKER_DATABASES.discard(self.database_url)

    def __enter__(self) -> TallyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients -------------------------------------------------------------------------------
    def token(self, user_id: str, email: str | None = None) -> str:
        from tally.auth.service import issue_dev_token

        return issue_dev_token(self.settings, user_id, email or f"{user_id}@example.com")

    def client(self, user_id: str | None = None, email: str | None = None) -> httpx.Client:
        """An HTTP client signed in as ``user_id`` (or anonymous)."""
        headers = {"Authorization": f"Bearer {self.token(user_id, email)}"} if user_id else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def admin_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30)
