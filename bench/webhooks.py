"""Webhook pipeline benchmark: signed events per second from HTTP delivery to committed processing, against
the same SQL transaction run bare with pgbench on the same database, in the same run.

    .venv/bin/python bench/webhooks.py [--events 3000] [--workers 1,2,4] [--rate 0]

What is measured
- pipeline, N = 1, 2, 4 ``tally worker`` processes: M signed ~1 KB events are POSTed to a running Tally
  (uvicorn, ``--api-workers`` processes) by 32 keep-alive connections; the figure is M / (time from the
  first send until the last inbox row is committed as processed). Each event goes through the signature
  check, the inbox insert (autocommitted), a worker's batch claim (row locks), the handler (update one
  of 10 000 balances + a ledger entry, ``bench/webhook_bench_handlers.py``) and the status flip. The run
  also prints the CPU time per event of the API processes and of the workers (Linux /proc).
- baseline: pgbench, 8 clients, statements prepared, for the bare transaction of the same shape (insert a
  1 KB inbox row, update one of 10 000 balances, insert a ledger entry).
- receipt latency: events sent open-loop at a fixed rate (by default the goal's 500 events/s, and half the
  best receipt rate measured in the same run) while 2 workers process them; latency is from the scheduled
  send time to the response (queueing included, no coordinated omission).

Everything (Postgres, API, workers, load generator, pgbench) shares this machine's cores; the table says
how many. The load generator is a tiny raw HTTP/1.1 client so that it costs little of them.

Figures measured with this script, and where the time went: README, "Benchmarks".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import (TALLY, Connection, cpu_seconds, log_file, open_loop, pgbench,  # noqa: E402
                           scalar, start_api, stop_all, tally_env, wait_for)
from bench.webhook_bench_handlers import ACCOUNTS, EVENT_TYPE, SCHEMA  # noqa: E402
from tally.db import libpq_url  # noqa: E402
from tests.tally_harness import fresh_database, free_port  # noqa: E402
from tests.webhook_signing import make_event, sign  # noqa: E402

PATH = "/v1/webhooks/stripe"
GOAL_RATE = 500.0  # events/s at which receipt p99 must stay under GOAL_P99_MS
GOAL_P99_MS = 20.0
SECRET = "whsec_bench_" + os.urandom(8).hex()

PGBENCH_SCRIPT = f"""\\set aid random(1, {ACCOUNTS})
BEGIN;
INSERT INTO bench_inbox (id, type, livemode, stripe_created, payload)
  VALUES ('evt_' || md5(random()::text || clock_timestamp()::text), '{EVENT_TYPE}', false, 0,
          jsonb_build_object('object', 'event', 'pad', repeat('x', 1000)));
WITH b AS (UPDATE bench_balances SET balance = balance + 100 WHERE id = :aid RETURNING id, balance)
INSERT INTO bench_ledger (account, amount, balance_after, event_id) SELECT id, 100, balance, 'pgbench' FROM b;
END;
"""


def build_request(event: dict[str, Any]) -> bytes:
    body = orjson.dumps(event)
    head = (f"POST {PATH} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Stripe-Signature: {sign(body, SECRET)}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def make_events(count: int) -> list[dict[str, Any]]:
    return [make_event(EVENT_TYPE, obj={"id": f"ch_{i}", "object": "charge", "amount": 100,
                                        "account": random.randint(1, ACCOUNTS)}, pad_to=1000)
            for i in range(count)]


async def closed_loop(port: int, requests: list[bytes], connections: int, seconds: float) -> tuple[float, int]:
    """Send as fast as ``connections`` allow, for at most ``seconds`` (so a slow machine still finishes in
    bounded time); the time when the last answer came and how many were sent."""
    it = iter(requests)
    failures = sent = 0
    deadline = time.perf_counter() + seconds

    async def run() -> None:
        nonlocal failures, sent
        conn = Connection("127.0.0.1", port)
        for request in it:
            sent += 1
            if await conn.post(request) != 200:
                failures += 1
            if time.perf_counter() > deadline:
                break
        conn.close()

    await asyncio.gather(*(run() for _ in range(connections)))
    if failures:
        raise RuntimeError(f"{failures} deliveries were not answered 200")
    return time.perf_counter(), sent


# -- processes -------------------------------------------------------------------------------------
def env_for(database_url: str) -> dict[str, str]:
    return tally_env(database_url, STRIPE_WEBHOOK_SECRET=SECRET, TALLY_HANDLER_MODULES="bench.webhook_bench_handlers")


def start_workers(database_url: str, count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes, returned once each has registered (its start-up, about a second of CPU
    here, done): rows left by an earlier run's workers do not count, or that start-up would be measured."""
    before = scalar(database_url, "SELECT coalesce(max(id), 0) FROM procrastinate_workers")
    procs = [subprocess.Popen([str(TALLY), "worker", "--concurrency", str(concurrency)], env=env_for(database_url),
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file(f"worker-{i}"))
             for i in range(count)]
    wait_for(lambda: scalar(database_url, f"SELECT count(*) FROM procrastinate_workers WHERE id > {before}")
             >= count, 30)
    return procs


def reset(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("TRUNCATE webhook_events, bench_ledger, bench_inbox")
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("UPDATE bench_balances SET balance = 0")
        conn.execute("VACUUM ANALYZE")


# -- measurements ------------------------------------------------------------------------------------
def run_pgbench(database_url: str, seconds: int, clients: int) -> float:
    return pgbench(database_url, PGBENCH_SCRIPT, seconds=seconds, clients=clients)


def pipeline(database_url: str, api: subprocess.Popen[bytes], port: int, workers: int, concurrency: int,
             events: int,
             seconds: float) -> dict[str, float]:
    reset(database_url)
    procs = start_workers(database_url, workers, concurrency)
    try:
        requests = [build_request(e) for e in make_events(events)]
        api_cpu, worker_cpu = cpu_seconds([api.pid]), cpu_seconds([p.pid for p in procs])
        t0 = time.perf_counter()
        received, sent = asyncio.run(closed_loop(port, requests, 32, seconds))
        done = wait_for(lambda: scalar(database_url, "SELECT count(*) FROM webhook_events WHERE status = "
                                                     "'processed'") >= sent, 120, 0.02)
        api_cpu, worker_cpu = cpu_seconds([api.pid]) - api_cpu, cpu_seconds([p.pid for p in procs]) - worker_cpu
    finally:
        stop_all(procs)
    assert scalar(database_url, "SELECT count(*) FROM bench_ledger") == sent
    return {"eps": sent / (done - t0), "receipt_eps": sent / (received - t0), "events": sent,
            "api_ms": api_cpu * 1000 / sent, "worker_ms": worker_cpu * 1000 / sent}


def latency(database_url: str, port: int, rate: float, seconds: float, workers: int,
            concurrency: int) -> tuple[float, float, float]:
    reset(database_url)
    procs = start_workers(database_url, workers, concurrency)
    try:
        requests = [build_request(e) for e in make_events(int(rate * seconds))]
        lat = asyncio.run(open_loop(port, requests, rate, warm=[build_request(make_events(1)[0])] * 32))
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM webhook_events WHERE status <> 'pending'")
                 >= len(requests), 120, 0.05)
    finally:
        stop_all(procs)
    lat.sort()
    return (statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000, lat[-1] * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000, help="events per pipeline run (at most)")
    parser.add_argument("--seconds", type=float, default=12, help="sending time per pipeline run (at most)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once per worker process")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes serving the API")
    parser.add_argument("--rate", type=float, default=0,
                        help="arrivals/s for the latency run (0: the goal's 500/s and half the best receipt rate)")
    parser.add_argument("--rate-seconds", type=float, default=6)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--database", default="auto", choices=["auto", "external", "embedded"])
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(args.database))
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(SCHEMA)
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        print(f"# webhook pipeline benchmark — PostgreSQL {version} ({args.database}), {os.cpu_count()} cores, "
              f"{args.events} events of ~1 KB, {args.api_workers} API processes, "
              f"worker concurrency {args.concurrency}", flush=True)
        reset(database_url)
        tps = run_pgbench(database_url, args.pgbench_seconds, 8)
        print(f"bare SQL (pgbench, 8 clients): {tps:,.0f} TPS", flush=True)

        port = free_port()
        api = start_api(env_for(database_url), port, args.api_workers)
        stack.callback(stop_all, [api])
        rows = []
        for n in counts:
            result = pipeline(database_url, api, port, n, args.concurrency, args.events, args.seconds)
            rows.append((n, result))
            print(f"pipeline, {n} worker(s): {result['eps']:,.0f} events/s "
                  f"(receipt alone {result['receipt_eps']:,.0f}/s; {result['events']:.0f} events; CPU per event: "
                  f"API {result['api_ms']:.2f} ms, workers {result['worker_ms']:.2f} ms)", flush=True)
        # The goal's rate (500 events/s), and half the best receipt rate measured here (a load this machine
        # carries with room to spare) when that differs.
        half = round(max(r["receipt_eps"] for _, r in rows) / 2, -1)
        rates = [args.rate] if args.rate else sorted({GOAL_RATE, half})
        latencies = [(rate, *latency(database_url, port, rate, args.rate_seconds, 2, args.concurrency))
                     for rate in rates]

    print()
    print("| measure | value | ratio to bare SQL | goal |")
    print("|---|---|---|---|")
    print(f"| bare SQL transaction, pgbench 8 clients | {tps:,.0f} TPS | 100 % | |")
    print(f"| receipt only (HTTP + signature + inbox insert), best run | "
          f"{max(r['receipt_eps'] for _, r in rows):,.0f} events/s | "
          f"{max(r['receipt_eps'] for _, r in rows) / tps:.0%} | |")
    for n, result in rows:
        ratio = result["eps"] / tps
        print(f"| pipeline, {n} worker process{'es' if n > 1 else ''} × {args.concurrency} | "
              f"{result['eps']:,.0f} events/s | {ratio:.0%} | ≥ 50 % {'✓' if ratio >= 0.5 else '✗'} |")
    for rate, p50, p99, worst in latencies:
        goal = f"p99 < {GOAL_P99_MS:.0f} ms {'✓' if p99 < GOAL_P99_MS else '✗'}" if rate == GOAL_RATE else ""
        print(f"| receipt latency at a fixed {rate:.0f} events/s (2 workers busy) | p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms (max {worst:.0f} ms) | | {goal} |")


if __name__ == "__main__":
    main()
