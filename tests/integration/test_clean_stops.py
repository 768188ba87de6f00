"""`tally serve` and `tally worker` stop on SIGTERM (systemd, `docker stop`) and SIGINT (Ctrl+C) with exit status 0
and everything they started stopped; after a `kill -9`, the next start takes over the embedded PostgreSQL the
killed process left running (and stops it when it stops)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.served_tally import TALLY, ServedTally, env_for, postgres_of, served
from tests.waiting import poll


def _stopped(tally: ServedTally, sig: int) -> int:
    """Send ``sig`` to the `tally serve` process alone (as a process manager does) and wait for its exit."""
    os.kill(tally.process.pid, sig)
    return tally.process.wait(timeout=60)


def _assert_nothing_left(data_dir: Path, sandbox_url: str) -> None:
    poll(lambda: not postgres_of(data_dir), timeout=30, every=0.2, what="the embedded PostgreSQL to stop")
    assert json.loads((data_dir / "pg" / ".handle_pids.json").read_text()) == []
    assert not (data_dir / "sandbox.url").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sandbox_url}/_sandbox/stats", timeout=5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_tally_serve_and_everything_it_started(tmp_path: Path, sig: int) -> None:
    with served(tmp_path) as tally:
        assert postgres_of(tally.data_dir), "the embedded PostgreSQL should run while tally serve does"
        assert httpx.get(f"{tally.sandbox.url}/_sandbox/stats", timeout=10).status_code == 200
        code = _stopped(tally, sig)
        assert code == 0, tally.printed()
        assert "Traceback" not in tally.printed()
        _assert_nothing_left(tally.data_dir, tally.sandbox.url)


def test_after_kill_9_the_next_start_takes_over_the_orphaned_postgres(tmp_path: Path) -> None:
    with served(tmp_path) as killed:
        orphans = postgres_of(killed.data_dir)
        killed.process.kill()
        killed.process.wait(timeout=30)
    assert all(process.is_running() for process in orphans), "kill -9 leaves the embedded PostgreSQL running"

    with served(tmp_path) as tally:
        assert {p.pid for p in postgres_of(tally.data_dir)} & {p.pid for p in orphans}, "the orphan is reused"
        holders = json.loads((tally.data_dir / "pg" / ".handle_pids.json").read_text())
        assert holders == [tally.process.pid], "the killed process is struck off the server's holders"
        assert _stopped(tally, signal.SIGTERM) == 0, tally.printed()
        _assert_nothing_left(tally.data_dir, tally.sandbox.url)


def test_sigterm_stops_a_worker_with_status_0_and_leaves_the_database_to_tally_serve(tmp_path: Path) -> None:
    with served(tmp_path, "--no-worker") as tally:
        worker = subprocess.Popen([str(TALLY), "worker"], cwd=tmp_path, env=env_for(tmp_path),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        holders = tally.data_dir / "pg" / ".handle_pids.json"
        poll(lambda: worker.pid in json.loads(holders.read_text()) or worker.poll() is not None, timeout=60,
             every=0.2, what="the worker to join the embedded PostgreSQL")
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0, out
        assert "Traceback" not in out
        assert json.loads(holders.read_text()) == [tally.process.pid]
        assert postgres_of(tally.data_dir), "tally serve still holds its database"
        assert _stopped(tally, signal.SIGTERM) == 0
        _assert_nothing_left(tally.data_dir, tally.sandbox.url)
