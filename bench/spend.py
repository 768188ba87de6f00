"""Credit spends per second: ``POST /v1/credits/spend`` from 32 concurrent keep-alive clients, on 1 000 users
and on one hot user, against the bare ``UPDATE wallet_balances ... RETURNING`` run by pgbench with the same
number of clients on the same database, in the same run.

    .venv/bin/python bench/spend.py [--seconds 8] [--clients 32] [--api-workers 2]

What is measured
- API: each request is a real spend: the JWT check (cached per token after the first), then one
  autocommitted statement (``tally.ledger.service._SPEND``: the floor-checked balance UPDATE, the ledger
  header with its unique reference from the idempotency key, two entries, the deferred zero-sum check at its
  commit); uvicorn with ``--api-workers`` processes.
- service: ``tally.ledger.service.spend`` called in-process by 32 asyncio tasks (what the spend costs
  without HTTP, FastAPI and auth).
- baseline: pgbench, the bare ``UPDATE ... RETURNING`` (the balance change alone, autocommitted, prepared).
- the same spend bare: Tally's own ``_SPEND`` statement, autocommitted and prepared, through pgbench. It shows what the
  goal (≥ 50 % of the bare UPDATE) asks of the database alone: a double-entry spend (a header with a unique
  reference, the floor-checked UPDATE, two entries, the deferred zero-sum check) is a bigger transaction than
  the UPDATE by itself; the second ratio is Tally's overhead over its own SQL.
After each run the ledger is checked: one spend transaction per 200 answer, balances down by as much.
Rate limits are switched off (``TALLY_RATE_LIMITS=false``): this measures the ledger, not the limiter.

Where the time went (2-core VM, py-spy):
- 2026-11: ``service.spend`` was seven round trips (wallet lookup, header insert, balance update, two
  entries through the ORM's bulk insert, commit); it became one statement inside a session: in process
  167 → ~430 spends/s on 1 000 users, 113 → ~310 on the hot user.
- 2026-12: the route still paid for ``ensure_user`` (an ORM read, 29 % of its samples), the session's
  liveness ping, BEGIN and COMMIT (three more round trips, a fifth of the CPU in libpq sends alone) and a
  second JWT check in the rate limiter. Now the route reads no user row (a user never credited has no wallet
  and nothing to spend), verified tokens are cached until they expire, and the statement runs autocommitted
  on ``Database.direct``: one round trip per spend, and the hot user's row is locked for no client round
  trip at all.
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


def ledger_script(hot: bool) -> str:
    """Tally's own spend statement (``tally.ledger.service._SPEND``: floor-checked balance UPDATE, header with
    its unique reference, two entries, the deferred zero-sum check at its commit), autocommitted as Tally
    sends it: the most any implementation of a double-entry spend could do here, with no Python at all."""
    from tally.ledger.service import _SPEND

    who = f"'{HOT}'" if hot else "'bench-' || :u"
    # pgbench reads ``:name`` as a variable even inside a quoted string, so the account code's colon is a chr().
    statement = " ".join(_SPEND.split()) % {
        "amount": "1", "user_id": who, "reference": "'pgbench:' || :client_id || ':' || :r", "reason": "'bench'",
        "details": "'{}'", "spending": "'system' || chr(58) || 'spending'"}
    return f"\\set u random(1, {USERS})\n\\set r random(1, 1000000000000)\n{statement};\n"


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
            await service.spend(db, user_id=users[(c * 7919 + i) % len(users)], amount=1,
                                reason="bench", idempotency_key=f"{run_id}-{c}-{i}")
            done += 1
            i += 1

    try:
        async with db.direct() as conn:  # open the pool before timing
            await conn.execute("SELECT 1")
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
            ledger = pgbench(database_url, ledger_script(hot), seconds=args.seconds, clients=args.clients)
            print(f"the same spend transaction bare, {where}: {ledger:,.0f}/s", flush=True)
            through_api = api_spends(database_url, port, hot, args.clients, args.seconds)
            print(f"POST /v1/credits/spend, {where}: {through_api:,.0f}/s", flush=True)
            in_process = service_spends(database_url, hot, args.clients, args.seconds)
            print(f"service.spend in-process, {where}: {in_process:,.0f}/s", flush=True)
            rows += [(f"bare `UPDATE ... RETURNING` (pgbench), {where}", bare, bare, ledger, True),
                     (f"Tally's spend transaction bare (pgbench), {where}", ledger, bare, ledger, True),
                     (f"`POST /v1/credits/spend` (HTTP), {where}", through_api, bare, ledger, False),
                     (f"`service.spend` in-process, {where}", in_process, bare, ledger, False)]

    print()
    print("| measure | spends/s | ratio to bare UPDATE | ratio to the same transaction bare | goal (≥ 50 % of bare "
          "UPDATE) |")
    print("|---|---|---|---|---|")
    for name, value, base, ledger, baseline in rows:
        goal = "" if baseline else verdict(value / base >= 0.5)
        print(f"| {name} | {value:,.0f} | {value / base:.0%} | {value / ledger:.0%} | {goal} |")


if __name__ == "__main__":
    main()
