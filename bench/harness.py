"""What the benchmarks share: a fresh database, Tally's API under uvicorn in its own processes, a tiny
keep-alive HTTP/1.1 client that costs the load generator little CPU, pgbench for the bare-SQL baselines,
and percentiles. Every process writes its output to a file under ``LOGS`` (a pipe nobody reads fills up
and blocks the process's logging); the folder is kept when the bench fails and removed otherwise, with the
processes' data folders."""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tally.db import libpq_url  # noqa: E402

TALLY = ROOT / ".venv" / "bin" / "tally"
UVICORN = ROOT / ".venv" / "bin" / "uvicorn"
LOGS = Path(tempfile.mkdtemp(prefix="tally-bench-logs-"))
_DATA_DIRS: list[str] = []
_failed: list[bool] = []
_previous_excepthook = sys.excepthook


def _note_failure(*exc_info: Any) -> None:
    _failed.append(True)
    _previous_excepthook(*exc_info)


sys.excepthook = _note_failure


@atexit.register
def _remove_temporary_folders() -> None:
    """The data folders always go; the processes' logs stay when the bench failed, to be read."""
    for folder in _DATA_DIRS:
        shutil.rmtree(folder, ignore_errors=True)
    if _failed:
        print(f"bench logs: {LOGS}", file=sys.stderr)
    else:
        shutil.rmtree(LOGS, ignore_errors=True)


def data_dir() -> str:
    folder = tempfile.mkdtemp(prefix="tally-bench-")
    _DATA_DIRS.append(folder)
    return folder


class Connection:
    """One keep-alive HTTP/1.1 connection sending pre-built requests."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        return status, await self.reader.readexactly(length)

    async def post(self, request: bytes) -> int:
        return (await self.send(request))[0]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def http_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode() + body


async def open_loop(port: int, requests: list[bytes], rate: float, *, warm: list[bytes],
                    expect: int = 200) -> list[float]:
    """Send request i at start + i/rate whatever happened before; latency from that scheduled time (queueing
    included: no coordinated omission). ``warm`` is sent first, one request per connection, so that connection
    set-up is not counted as latency; every answer must have status ``expect``.

    Each request is started by one pacing loop when its time comes (creating thousands of tasks up front
    would itself make the first sends late, and that lateness would be counted as the server's). A kept-alive
    connection the server has closed meanwhile (uvicorn closes idle ones after 5 s) is opened again, on the
    request's own clock, and the request sent again: only for requests that are idempotent."""
    idle: list[Connection] = []
    latencies: list[float] = []

    async def one(scheduled: float, request: bytes) -> None:
        conn = idle.pop() if idle else Connection("127.0.0.1", port)
        try:
            status, body = await conn.send(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            conn.close()
            conn = Connection("127.0.0.1", port)
            status, body = await conn.send(request)
        latencies.append(time.perf_counter() - scheduled)
        idle.append(conn)
        if status != expect:
            raise RuntimeError(f"answered {status}, not {expect}: {body[:300]!r}")

    warmed = [Connection("127.0.0.1", port) for _ in warm]
    await asyncio.gather(*(c.send(r) for c, r in zip(warmed, warm)))
    idle.extend(warmed)
    tasks = []
    start = time.perf_counter() + 0.01
    for i, request in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, request)))
    await asyncio.gather(*tasks)
    for c in idle:
        c.close()
    return latencies


def log_file(name: str) -> Any:
    return open(LOGS / f"{name}.log", "ab")


def tally_env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "TALLY_DATABASE_URL": database_url, "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_WEBHOOK_SECRET": "whsec_bench_unused",
            "TALLY_DATA_DIR": data_dir(),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra}


def start_api(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    """Tally's API (no in-process worker) under uvicorn[standard] with ``workers`` processes."""
    proc = subprocess.Popen(
        [str(UVICORN), "--factory", "bench.tally_asgi:create", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
         "--http", "httptools"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file("api"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.5 * workers)  # every uvicorn worker process running its lifespan
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the API died; see {LOGS / 'api.log'}")
            time.sleep(0.1)
    raise RuntimeError("the API did not start")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def scalar(database_url: str, query: str) -> Any:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        return conn.execute(query).fetchone()[0]  # type: ignore[index]


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(interval)
    raise RuntimeError("timed out")


def pgbench(database_url: str, script: str, *, seconds: float, clients: int) -> float:
    """Transactions per second of ``script``: ``pgbench_run``'s rate."""
    return pgbench_run(database_url, script, seconds=seconds, clients=clients)[0]


def pgbench_run(database_url: str, script: str, *, seconds: float, clients: int) -> tuple[float, int]:
    """(transactions per second, transactions done) of ``script`` (pgbench's own client, C, one connection per
    client), its statements prepared once per connection (``-M prepared``) as Tally's own are (psycopg prepares a
    statement it has sent a few times). Until 2026-12-03 the baselines ran unprepared, paying a parse and a plan
    per statement: 30-130 % lower than now on the development VM, so earlier ratios are not comparable. A failed
    statement aborts its pgbench client and fails the run, with pgbench's own message."""
    exe = shutil.which("pgbench")
    if exe is None:
        raise SystemExit("pgbench not found: apt-get install -y postgresql-contrib (or postgresql-client)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    threads = str(min(clients, os.cpu_count() or 2))
    done = subprocess.run([exe, "-n", "-M", "prepared", "-c", str(clients), "-j", threads,
                           "-T", str(max(1, round(seconds))), "-f", f.name, libpq_url(database_url)],
                          capture_output=True, text=True)
    os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed (exit {done.returncode}): {done.stderr[-2000:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    assert tps and count, done.stdout
    return float(tps.group(1)), int(count.group(1))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes and their children (Linux /proc; 0 elsewhere)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    seen = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue
        todo += [int(c) for c in children]
    return total


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def verdict(ok: bool) -> str:
    return "✓" if ok else "✗"
