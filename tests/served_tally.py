"""``tally serve`` run as a user runs it, on the embedded defaults (no database URL, no Stripe key), in a
child process: what the page tests and the scale-out test drive."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

SERVING = re.compile(r"^tally: serving on (\S+)")
SANDBOX_AT = re.compile(r"^tally: stripe: offline sandbox at (\S+)")
# Kept from the test environment: tests/conftest.py raises the rate limits for the whole run (the page tests
# sign in more often than 10 times a minute from one address). Nothing else of TALLY_* / STRIPE_* is passed.
KEPT_SETTINGS = ("TALLY_RATE_LIMIT_USER", "TALLY_RATE_LIMIT_IP", "TALLY_RATE_LIMIT_API_KEY", "TALLY_RATE_LIMIT_LOGIN")


@dataclass(frozen=True)
class Endpoint:
    url: str


@dataclass
class ServedTally:
    """A ``tally serve`` process: the same attributes page tests use from the in-thread harness (``url``,
    ``sandbox.url``), its data directory and everything it printed."""

    process: subprocess.Popen[str]
    data_dir: Path
    url: str = ""
    sandbox: Endpoint = Endpoint("")
    output: list[str] = field(default_factory=list)

    def printed(self) -> str:
        return "".join(self.output)


def _drain(served: ServedTally) -> None:
    # Read everything the server prints, so a full pipe can never block it; the test reads ``output``.
    assert served.process.stdout is not None
    for line in served.process.stdout:
        served.output.append(line)


def _wait_started(served: ServedTally, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for line in list(served.output):
            if (found := SERVING.match(line)) is not None:
                served.url = found.group(1).rstrip("/")
            if (found := SANDBOX_AT.match(line)) is not None:
                served.sandbox = Endpoint(found.group(1).rstrip("/"))
        if served.url:
            try:
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"tally serve did not start:\n{served.printed()}")
        time.sleep(0.2)


def stop_served(served: ServedTally, sig: int = signal.SIGINT) -> None:
    """Ctrl+C, as a user stops it (uvicorn shuts down, the embedded PostgreSQL and the sandbox stop); killed
    only if it does not stop in time. Signals go to its own process group (start_new_session), nothing else."""
    if served.process.poll() is None:
        os.killpg(served.process.pid, sig)
        try:
            served.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait()


@contextmanager
def served(home: Path, *args: str) -> Iterator[ServedTally]:
    """``tally serve --port <free> *args`` with a fresh ``TALLY_DATA_DIR`` under ``home``: embedded PostgreSQL
    (pgserver) and the offline sandbox it starts. Stopped with Ctrl+C at the end."""
    from tests.tally_harness import free_port

    process = subprocess.Popen([str(TALLY), "serve", "--port", str(free_port()), *args], cwd=home, env=env_for(home),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    tally = ServedTally(process, home / "data")
    threading.Thread(target=_drain, args=(tally,), daemon=True).start()
    try:
        _wait_started(tally, timeout=120)
        assert tally.sandbox.url, f"tally serve did not say where its sandbox is:\n{tally.printed()}"
        yield tally
    finally:
        stop_served(tally)


def postgres_of(data_dir: Path) -> list[psutil.Process]:
    """The embedded PostgreSQL server processes running on ``data_dir``'s database."""
    pgdata = str((data_dir / "pg").resolve())
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if pgdata in cmdline and any(part.endswith("/postgres") for part in cmdline[:1]):
            found.append(process)
    return found


def env_for(home: Path) -> dict[str, str]:
    """The test run's environment without any Tally or Stripe setting (but the raised rate limits), on the data
    directory ``home/data``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_")) or k in KEPT_SETTINGS}
    env["TALLY_DATA_DIR"] = str(home / "data")
    return env


TALLY = Path(sys.executable).parent / "tally"
