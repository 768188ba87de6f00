"""Credit spends per second: ``POST /v1/credits/spend`` from 32 concurrent keep-alive clients, on 1 000 users
and on one hot user, against the bare ``UPDATE wallet_balances ... RETURNING`` run by pgbench with the same
number of clients on the same database, in the same run.

    .venv/bin/python bench/spend.py [--seconds 8] [--clients 32] [--api-workers 2]

What is measured
- API: each request is a real spend: JWT check, the user row, the ledger transaction header with its
  unique reference (the idempotency key), the balance ``UPDATE ... WHERE balance >= amount RETURNING``,
  two ledger entries, the deferred balance check, the commit; uvicorn with ``--api-workers`` processes.
- service: ``tally.ledger.service.spend`` called in-process by 32 asyncio tasks, each in its own
  transaction (what the spend costs without HTTP, FastAPI and auth).
- baseline: pgbench, the bare ``UPDATE ... RETURNING`` (the balance change alone, autocommitted).
After each run the ledger is checked: one spend transaction per 200 answer, balances down by as much.
Rate limits are switched off (``TALLY_RATE_LIMITS=false``): this measures the ledger, not the limiter.

Where the time went (2-core VM, 2026-11, py-spy): ``service.spend`` was seven round trips (wallet
lookup, header insert, balance update, two entries through the ORM's bulk insert, commit) with the
ORM's statement building in between; it is now one statement (``tally.ledger.service._SPEND``): in
process 167 → ~430 spends/s on 1 000 users, 113 → ~310 on the hot user (whose row lock is now held for
one round trip less). Through HTTP, ``ensure_user`` ran an upsert plus a read on every call (and the
upsert locks the user row even when it changes nothing); it now reads first. What remains is Python per
request on a slow VM (≈5 ms of API CPU per spend: middleware, FastAPI, JWT, the session); the bare
UPDATE is a single C-client statement, so the ratio stays far below the 50 % goal here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import jwt
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (Connection, http_request, pgbench, scalar, start_api, stop_all,  # noqa: E402
                           tally_env, verdict)
from tally.db import Database, libpq_url  # noqa: E402
from tally.ledger.models import wallet_code  # noqa: E402
from tests.tally_harness import fresh_database, free_port  # noqa: E402

USERS = 1000
HOT = "bench-hot"
START_BALANCE = 10**12
JWT_SECRET = "bench-" + os.urandom(16).hex()


def seed(database_url: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) SELECT 'bench-' || g FROM generate_series(1, %s) g "
                     "UNION ALL SELECT %s", (USERS, HOT))
        conn.cursor().executemany("INSERT INTO ledger_accounts (code, kind, user_id) VALUES (%s, 'wallet', %s)",
                                  [(wallet_code(u), u) for u in [*user_ids(False), HOT]])
        conn.execute("INSERT INTO wallet_balances (user_id, account_id, balance) "
                     "SELECT user_id, id, %s FROM ledger_accounts WHERE kind = 'wallet'", (START_BALANCE,))
        conn.execute("VACUUM ANALYZE")


def user_ids(hot: bool) -> list[str]:
    return [HOT] if hot else [f"bench-{i}" for i in range(1, USERS + 1)]


def bare_script(hot: bool) -> str:
    who = f"'{HOT}'" if hot else "'bench-' || :u"
    return (f"\\set u random(1, {USERS})\n"
            f"UPDATE wallet_balances SET balance = balance - 1, updated_at = now() "
            f"WHERE user_id = {who} AND balance >= 1 RETURNING balance;\n")


def spent(database_url: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM ledger_transactions WHERE kind = 'spend'"))


def balance_drop(database_url: str) -> int:
    return int(scalar(database_url, f"SELECT coalesce(sum({START_BALANCE} - balance), 0) FROM wallet_balances"))


def snapshot(database_url: str) -> tuple[int, int]:
    """(spend transactions, coins gone from wallets) so far: the ledger is append-only, so each run is
    checked by what it added."""
    return spent(database_url), balance_drop(database_url)


def check(database_url: str, before: tuple[int, int], done: int) -> None:
    after = snapshot(database_url)
    if (after[0] - before[0], after[1] - before[1]) != (done, done):
        raise RuntimeError(f"{done} spends answered, but the ledger gained {after[0] - before[0]} spend "
                           f"transactions and wallets lost {after[1] - before[1]} coins")


# -- through the API ----------------------------------------------------------------------------------
def spend_request(user: str, token: str, key: str) -> bytes:
    body = orjson.dumps({"amount": 1, "reason": "bench", "idempotency_key": key})
    return http_request("POST", "/v1/credits/spend", body, {"Content-Type": "application/json",
                                                            "Authorization": f"Bearer {token}"})


async def api_run(port: int, users: list[str], clients: int, seconds: float) -> tuple[int, list[float]]:
    tokens = {u: jwt.encode({"sub": u, "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
              for u in users}
    run_id = os.urandom(4).hex()
    done = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done
        conn = Connection("127.0.0.1", port)
        i = 0
        while time.perf_counter() < deadline:
            user = users[(c * 7919 + i) % len(users)]
            request = spend_request(user, tokens[user], f"{run_id}-{c}-{i}")
            t = time.perf_counter()
            status, body = await conn.send(request)
            latencies.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"spend answered {status}: {body[:300]!r}")
            done += 1
            i += 1
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done, [time.perf_counter() - start, *latencies]


def api_spends(database_url: str, port: int, hot: bool, clients: int, seconds: float) -> float:
    before = snapshot(database_url)
    done, (elapsed, *_) = asyncio.run(api_run(port, user_ids(hot), clients, seconds))
    check(database_url, before, done)
    return done / elapsed


# -- in-process, no HTTP -------------------------------------------------------------------------------
async def service_run(database_url: str, users: list[str], clients: int, seconds: float) -> tuple[int, float]:
    from tally.ledger import service

    db = Database(database_url, pool_size=clients)
    run_id = os.urandom(4).hex()
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            async with db.transaction() as session:
                await service.spend(session, user_id=users[(c * 7919 + i) % len(users)], amount=1,
                                    reason="bench", idempotency_key=f"{run_id}-{c}-{i}")
            done += 1
            i += 1

    try:
        async with db.transaction() as session:  # warm the pool and the system-account cache
            await service.system_account(session, "system:spending")
        start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        return done, time.perf_counter() - start
    finally:
        await db.dispose()


def service_spends(database_url: str, hot: bool, clients: int, seconds: float) -> float:
    before = snapshot(database_url)
    done, elapsed = asyncio.run(service_run(database_url, user_ids(hot), clients, seconds))
    check(database_url, before, done)
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8, help="per measurement")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes serving the API")
    parser.add_argument("--database", default="auto", choices=["auto", "external", "embedded"])
    args = parser.parse_args()

    rows: list[tuple[str, float, float]] = []
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(args.database))
        seed(database_url)
        print(f"# credit spend benchmark — {os.cpu_count()} cores, {args.clients} clients, {USERS} users, "
              f"{args.api_workers} API processes, {args.seconds:.0f} s per measurement", flush=True)
        port = free_port()
        env = tally_env(database_url, TALLY_JWT_SECRET=JWT_SECRET, TALLY_RATE_LIMITS="false")
        api = start_api(env, port, args.api_workers)
        stack.callback(stop_all, [api])
        for hot in (False, True):
            where = "one hot user" if hot else f"{USERS} users"
            bare = pgbench(database_url, bare_script(hot), seconds=args.seconds, clients=args.clients)
            print(f"bare UPDATE ... RETURNING, {where}: {bare:,.0f}/s", flush=True)
            through_api = api_spends(database_url, port, hot, args.clients, args.seconds)
            print(f"POST /v1/credits/spend, {where}: {through_api:,.0f}/s", flush=True)
            in_process = service_spends(database_url, hot, args.clients, args.seconds)
            print(f"service.spend in-process, {where}: {in_process:,.0f}/s", flush=True)
            rows += [(f"bare `UPDATE ... RETURNING` (pgbench), {where}", bare, bare),
                     (f"`POST /v1/credits/spend` (HTTP), {where}", through_api, bare),
                     (f"`service.spend` in-process, {where}", in_process, bare)]

    print()
    print("| measure | spends/s | ratio to bare SQL | goal |")
    print("|---|---|---|---|")
    for name, value, base in rows:
        goal = "" if value is base else f"≥ 50 % {verdict(value / base >= 0.5)}"
        print(f"| {name} | {value:,.0f} | {value / base:.0%} | {goal} |")


if __name__ == "__main__":
    main()
