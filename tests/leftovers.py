"""What keeps a test run from leaving anything behind, and two clones' runs apart.

Everything temporary goes under one folder of this run's own (``TMPDIR`` and ``tempfile.tempdir`` point at it,
so pytest's ``tmp_path``, every ``mkdtemp`` and every child process's temporary files land there). At the end,
failures included (tests/conftest.py, once the embedded PostgreSQL this process holds is stopped), the run
fails if a process it started is still alive (a child, or a PostgreSQL server on a data folder under the run's
folder), and the folder is deleted."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

GRACE_SECONDS = 15  # for processes already told to stop (a server's last pg_ctl stop, a killed child's exit)


def start() -> Path:
    """Make this run's temporary folder and send every temporary file there."""
    root = Path(tempfile.mkdtemp(prefix="tally-tests-"))
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = str(root)
    return root


def leftover_processes(root: Path) -> list[psutil.Process]:
    """Processes the run started that still run: children of this process, and servers working under ``root``
    (the embedded PostgreSQL daemonizes: it is nobody's child)."""
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True)}
    for process in psutil.process_iter(["cmdline"]):
        if any(str(root) in part for part in process.info["cmdline"] or []) and process.pid != me.pid:
            found.setdefault(process.pid, process)
    return [p for p in found.values() if _alive(p)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def finish(root: Path, *, grace_seconds: float = GRACE_SECONDS) -> list[str]:
    """What the run left running (after waiting up to ``grace_seconds`` for it to end), described; then stopped,
    and the run's folder deleted."""
    deadline = time.monotonic() + grace_seconds
    left = leftover_processes(root)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = leftover_processes(root)
    described = [f"pid {p.pid}: {' '.join(_cmdline(p))[:200]}" for p in left]
    for process in left:  # stopped anyway, so that the next run starts clean
        _stop(process)
    shutil.rmtree(root, ignore_errors=True)
    return described


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _stop(process: psutil.Process) -> None:
    try:
        process.kill()
    except psutil.Error:
        pass
