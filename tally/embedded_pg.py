"""The embedded PostgreSQL (pgserver) that Tally runs in ``<data folder>/pg`` when no ``TALLY_DATABASE_URL`` is
given: started, or joined when another Tally process of the same data folder (or one that crashed) left it
running, and handed back when the process stops, so that the last process out stops it.

pgserver keeps the processes holding a server in ``pg/.handle_pids.json`` and stops the server when the last
of them exits through ``atexit``. A process that dies without ``atexit`` (``kill -9``, an unhandled signal)
stays in that list forever, and with it no later holder is ever the last: the server would never be stopped
again. So the dead are struck off the list before joining."""

from __future__ import annotations

import atexit
import json
import os
import warnings
from pathlib import Path
from typing import Any

import psutil

HOLDERS_FILE = ".handle_pids.json"  # pgserver's list of the processes holding the server

_servers: dict[Path, Any] = {}  # pgdata → pgserver.PostgresServer held by this process


def pg_folder(data_dir: Path) -> Path:
    return (data_dir / "pg").resolve()


def has_database(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds an embedded database (one that `tally serve` created)."""
    return (pg_folder(data_dir) / "PG_VERSION").exists()


def start(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL of ``data_dir`` and return its libpq URL."""
    pgdata = pg_folder(data_dir)
    if pgdata not in _servers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            import pgserver
            from pgserver.postgres_server import PostgresServer

        pgdata.mkdir(parents=True, exist_ok=True)
        # pgserver's own inter-process lock guards the holders' list against a concurrent start or stop.
        with PostgresServer._lock:
            forget_dead_holders(pgdata)
        _servers[pgdata] = pgserver.get_server(pgdata, cleanup_mode="stop")
    return str(_servers[pgdata].get_uri())


def forget_dead_holders(pgdata: Path) -> list[int]:
    """Strike the processes that no longer run off the server's holders; returns the pids struck off."""
    holders_file = pgdata / HOLDERS_FILE
    if not holders_file.exists():
        return []
    try:
        holders = [int(pid) for pid in json.loads(holders_file.read_text() or "[]")]
    except (ValueError, TypeError):
        holders = []  # unreadable: pgserver rewrites it
    alive = [pid for pid in holders if pid == os.getpid() or _running(pid)]
    if alive != holders:
        holders_file.write_text(json.dumps(alive))
    return [pid for pid in holders if pid not in alive]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def release(data_dir: Path) -> None:
    """Hand back this process's hold on the embedded PostgreSQL of ``data_dir``: stopped if it was the last."""
    server = _servers.pop(pg_folder(data_dir), None)
    if server is not None:
        server.cleanup()  # cleanup_mode="stop": stops the server, keeps the data
        # pgserver's exit hook would find nothing left to do, but it takes its file lock first, which re-creates
        # its runtime folder (under TMPDIR) after whoever owns that folder has removed it.
        atexit.unregister(server._cleanup)


def release_all() -> None:
    for pgdata in list(_servers):
        release(pgdata.parent)
