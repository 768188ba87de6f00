"""Credit spends per second through Tally's API beside pgledger's transfer function (github.com/pgr0ss/pgledger, a
pure-SQL double-entry ledger) and Tally's own spend statement run bare, all on the same PostgreSQL, alternated in
one run: every measurement is taken once per round, the rounds run in alternating order, and the tables give the
min / median / max over the rounds, and the same of each ratio (taken within a round, so that both sides of a
ratio met the same machine).

    git clone https://github.com/pgr0ss/pgledger /work/peers/pgledger     # outside this repository
    .venv/bin/python bench/spend.py --pgledger /work/peers/pgledger [--rounds 3] [--seconds 5] [--clients 8,32]

Without ``--pgledger`` (or $TALLY_BENCH_PGLEDGER) the pgledger rows and the ratios to them are skipped, saying so.

What is measured, each on 1 000 users (accounts) and on one hot user (account), at each client count:
- pgledger: ``pgledger_create_transfer`` of one unit through pgbench ``-M prepared``, in a database of its own
  beside Tally's (``bench/pgledger_peer.py``: its SQL, how accounts are set up, what "hot" means for it).
- the spend statement bare: Tally's own spend statement (``tally.ledger.spending._SPEND``, one
  ``tally_ledger_spend`` call: the wallet's row lock, the replay check, what the grants can give, the draw from
  them in order with an entry per grant, the header with its unique reference, the counter entry),
  autocommitted and prepared, through pgbench: the most any Python sending one spend per statement could reach.
- the group transaction bare (the largest client count): what ``tally.ledger.group_commit`` sends for 10 spends
  (the group's wallets locked first, then one ``_SPENDS`` statement), each spend with its own
  reference, header and entries; spends per second (transactions × 10).
- HTTP spends: ``POST /v1/credits/spend`` from keep-alive clients, each request a real spend (the JWT check,
  cached per token after the first, then its share of a group statement: ``tally.ledger.group_commit``),
  uvicorn with ``--api-workers`` processes. After each run the ledger is checked: one spend transaction per
  200 answer, wallets down by as much.
- HTTP hold + capture pairs (1 000 users, the largest client count): ``POST /v1/credits/holds`` then
  ``POST /v1/credits/holds/{id}/capture``, pairs per second, checked like spends (a capture is a spend).
- p99 at a paced rate (by default 1 000 spends/s on 1 000 users): requests sent open-loop at fixed times,
  latency from the scheduled send time to the answer (queueing included).
- with each HTTP spends row, the API processes' CPU time per spend (Linux /proc).
- ``--extras`` adds, at the largest client count: the same HTTP spends through FastAPI's own route (a content type
  FastAPI reads as JSON but the fast path, ``tally.ledger.fast_path``, leaves to it: what the fast path saves),
  the bare ``UPDATE wallet_balances ... RETURNING`` (pgbench) and ``spending.spend`` called in-process by
  asyncio tasks (one statement per spend, without HTTP, FastAPI and auth).
Rate limits are switched off (``TALLY_RATE_LIMITS=false``): this measures the ledger, not the limiter.

Goals (issue 14, item 8), as ratios within a round, pgledger taken at its best client count in that round:
HTTP spends on 1 000 users (32 clients) ≥ pgledger's transfers on 1 000 accounts; HTTP spends on the hot user ≥
pgledger's on its hot account; hold + capture pairs ≥ half of pgledger's transfers; p99 < 10 ms at 1 000 spends/s.

Figures measured with this script, and where the time went: README, "Benchmarks".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import jwt
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pgledger_peer  # noqa: E402
from bench.harness import (Connection, cpu_seconds, http_request, open_loop, percentile,  # noqa: E402
                           pgbench_run, scalar, start_api, stop_all, tally_env, verdict)
from tally.db import Database, libpq_url  # noqa: E402
from tally.ledger.models import wallet_code  # noqa: E402
from tests.tally_harness import fresh_database, free_port  # noqa: E402

USERS = 1000
HOT = "bench-hot"
START_BALANCE = 10**12
GROUP = 10  # spends per transaction in the group transaction's bare row
JWT_SECRET = "bench-" + os.urandom(16).hex()
SHAPES = {"many": f"{USERS} users", "hot": "one hot user"}
PEER_SHAPES = {"many": f"{USERS} accounts", "hot": "one hot account"}


# -- Tally's database ----------------------------------------------------------------------------------
def seed(database_url: str) -> None:
    """1 000 users and the hot one, each with one never-expiring paid grant of ``START_BALANCE`` credits: what
    migration 0009 makes of a wallet balance (``balance = Σ remaining + held − debt``)."""
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) SELECT 'bench-' || g FROM generate_series(1, %s) g "
                     "UNION ALL SELECT %s", (USERS, HOT))
        conn.cursor().executemany("INSERT INTO ledger_accounts (code, kind, user_id) VALUES (%s, 'wallet', %s)",
                                  [(wallet_code(u), u) for u in [*user_ids(False), HOT]])
        conn.execute("INSERT INTO wallet_balances (user_id, account_id, balance) "
                     "SELECT user_id, id, %s FROM ledger_accounts WHERE kind = 'wallet'", (START_BALANCE,))
        conn.execute("INSERT INTO credit_grants (user_id, source, category, amount, remaining, priority, expires_at) "
                     "SELECT user_id, 'adjustment', 'paid', balance, balance, 30, NULL FROM wallet_balances")
        conn.execute("VACUUM ANALYZE")


def user_ids(hot: bool) -> list[str]:
    return [HOT] if hot else [f"bench-{i}" for i in range(1, USERS + 1)]


def bare_script(hot: bool) -> str:
    who = f"'{HOT}'" if hot else "'bench-' || :u"
    return (f"\\set u random(1, {USERS})\n"
            f"UPDATE wallet_balances SET balance = balance - 1, updated_at = now() "
            f"WHERE user_id = {who} AND balance >= 1 RETURNING balance;\n")


def statement_script(hot: bool) -> str:
    """Tally's own spend statement (``tally.ledger.spending._SPEND``: one ``tally_ledger_spend`` call, which locks
    the wallet, answers a replay, checks what the grants can give and draws from them in order, writing the
    header and the entries), autocommitted as Tally sends it."""
    from tally.ledger.spending import _SPEND

    who = f"'{HOT}'" if hot else "'bench-' || :u"
    statement = _SPEND % (who, "1", "'pgbench-' || :client_id || '-' || :r", "'bench'",
                          """'{"idempotency_key": "pgbench"}'""", "now()")
    return f"\\set u random(1, {USERS})\n\\set r random(1, 1000000000000)\n{statement};\n"


def group_script(hot: bool, size: int) -> str:
    """Tally's group transaction (``tally.ledger.group_commit``: the group's wallets locked first, then one
    ``_SPENDS`` statement) carrying ``size`` spends, users sorted as the group committer sorts them; each spend
    keeps its own reference, header and entries."""
    from tally.ledger.group_commit import _LOCK_WALLETS, _SPENDS

    picks = "".join(f"\\set u{i} random(1, {USERS})\n" for i in range(size))
    users = (f"array_fill('{HOT}'::text, ARRAY[{size}])" if hot else
             "ARRAY(SELECT x FROM unnest(ARRAY[" + ", ".join(f"'bench-' || :u{i}" for i in range(size))
             + "]) x ORDER BY 1)")
    ats = f"array_fill(now(), ARRAY[{size}])"
    keys = f"ARRAY(SELECT 'pgbench-' || :client_id || '-' || :r || '-' || g FROM generate_series(1, {size}) g)"
    statements = [_LOCK_WALLETS % (users,),
                  _SPENDS % (users, f"array_fill(1::bigint, ARRAY[{size}])", keys,
                             f"array_fill('bench'::text, ARRAY[{size}])", keys, ats)]
    body = "".join(" ".join(statement.split()) + ";\n" for statement in statements)
    return f"{picks}\\set r random(1, 1000000000000)\nBEGIN;\n{body}COMMIT;\n"


def snapshot(database_url: str) -> tuple[int, int]:
    """(spend transactions, coins gone from wallets) so far: the ledger is append-only, so each run is
    checked by what it added."""
    return (int(scalar(database_url, "SELECT count(*) FROM ledger_transactions WHERE kind = 'spend'")),
            int(scalar(database_url, f"SELECT coalesce(sum({START_BALANCE} - balance), 0) FROM wallet_balances")))


def check(database_url: str, before: tuple[int, int], done: int) -> None:
    after = snapshot(database_url)
    if (after[0] - before[0], after[1] - before[1]) != (done, done):
        raise RuntimeError(f"{done} spends answered, but the ledger gained {after[0] - before[0]} spend "
                           f"transactions and wallets lost {after[1] - before[1]} coins")


def statement_spends(database_url: str, hot: bool, seconds: float, clients: int) -> float:
    before = snapshot(database_url)
    rate, done = pgbench_run(database_url, statement_script(hot), seconds=seconds, clients=clients)
    check(database_url, before, done)
    return rate


def group_spends(database_url: str, hot: bool, seconds: float, clients: int) -> float:
    """Spends per second of ``group_script``: transactions per second times ``GROUP``."""
    before = snapshot(database_url)
    rate, done = pgbench_run(database_url, group_script(hot, GROUP), seconds=seconds, clients=clients)
    check(database_url, before, done * GROUP)
    return rate * GROUP


def bare_updates(database_url: str, hot: bool, seconds: float, clients: int) -> float:
    return pgbench_run(database_url, bare_script(hot), seconds=seconds, clients=clients)[0]


def pgledger_transfers(url: str, hot: bool, seconds: float, clients: int) -> float:
    before = pgledger_peer.snapshot(url)
    rate, done = pgbench_run(url, pgledger_peer.transfer_script(hot, USERS), seconds=seconds, clients=clients)
    after = pgledger_peer.snapshot(url)
    if after != (before[0] + done, 0):
        raise RuntimeError(f"pgbench counted {done} transfers, but pgledger gained {after[0] - before[0]} and "
                           f"its balances sum to {after[1]}")
    return rate


# -- through the API ------------------------------------------------------------------------------------
TOKENS: dict[str, str] = {}


def token(user: str) -> str:
    if user not in TOKENS:
        TOKENS[user] = jwt.encode({"sub": user, "exp": int(time.time()) + 6 * 3600}, JWT_SECRET, algorithm="HS256")
    return TOKENS[user]


JSON = "application/json"
# FastAPI reads this as JSON too, but the credits fast path (tally.ledger.fast_path) leaves it to FastAPI's route.
JSON_FOR_FASTAPI = "application/vnd.tally+json"


def post(path: str, user: str, payload: dict[str, object], content_type: str = JSON) -> bytes:
    return http_request("POST", path, orjson.dumps(payload), {"Content-Type": content_type,
                                                             "Authorization": f"Bearer {token(user)}"})


def spend_request(user: str, key: str, content_type: str = JSON) -> bytes:
    return post("/v1/credits/spend", user, {"amount": 1, "reason": "bench", "idempotency_key": key}, content_type)


async def closed_loop(port: int, clients: int, seconds: float,
                      one: Callable[[Connection, int, int], Awaitable[None]]) -> float:
    """``clients`` keep-alive connections, each running ``one(conn, client, i)`` (a coroutine) back to back
    until ``seconds`` have passed; returns the elapsed time."""
    deadline = time.perf_counter() + seconds

    async def client(c: int, conn: Connection) -> None:
        i = 0
        while time.perf_counter() < deadline:
            await one(conn, c, i)
            i += 1
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c, Connection("127.0.0.1", port)) for c in range(clients)))
    return time.perf_counter() - start


def http_spends(database_url: str, api: int, port: int, hot: bool, clients: int, seconds: float,
                content_type: str = JSON) -> tuple[float, float]:
    """Spends per second, and the API processes' CPU time per spend in ms (Linux /proc)."""
    users = user_ids(hot)
    run_id = os.urandom(4).hex()
    done = 0

    async def one(conn: Connection, c: int, i: int) -> None:
        nonlocal done
        status, body = await conn.send(spend_request(users[(c * 7919 + i) % len(users)], f"{run_id}-{c}-{i}",
                                                     content_type))
        if status != 200:
            raise RuntimeError(f"spend answered {status}: {body[:300]!r}")
        done += 1

    before, cpu = snapshot(database_url), cpu_seconds([api])
    elapsed = asyncio.run(closed_loop(port, clients, seconds, one))
    cpu = cpu_seconds([api]) - cpu
    check(database_url, before, done)
    return done / elapsed, cpu * 1000 / max(done, 1)


def http_hold_pairs(database_url: str, port: int, clients: int, seconds: float) -> float:
    """Hold one coin, then capture it (``POST /v1/credits/holds`` → 201 with the hold's id, then
    ``POST /v1/credits/holds/{id}/capture``): pairs per second."""
    users = user_ids(False)
    run_id = os.urandom(4).hex()
    done = 0

    async def one(conn: Connection, c: int, i: int) -> None:
        nonlocal done
        user = users[(c * 7919 + i) % len(users)]
        status, body = await conn.send(post("/v1/credits/holds", user,
                                            {"amount": 1, "idempotency_key": f"{run_id}-{c}-{i}"}))
        if status != 201:
            raise RuntimeError(f"hold answered {status}: {body[:300]!r}")
        hold = orjson.loads(body)["id"]
        status, body = await conn.send(post(f"/v1/credits/holds/{hold}/capture", user, {}))
        if status != 200:
            raise RuntimeError(f"capture answered {status}: {body[:300]!r}")
        done += 1

    before = snapshot(database_url)
    elapsed = asyncio.run(closed_loop(port, clients, seconds, one))
    check(database_url, before, done)  # a capture is a spend transaction
    return done / elapsed


def paced_latency(database_url: str, port: int, rate: float, seconds: float) -> dict[str, float]:
    """p50, p99 and max in ms of spends on 1 000 users sent open-loop at ``rate`` per second."""
    users = user_ids(False)
    run_id = os.urandom(4).hex()
    warm = [spend_request(users[i], f"{run_id}-warm-{i}") for i in range(32)]
    requests = [spend_request(users[i % len(users)], f"{run_id}-{i}") for i in range(int(rate * seconds))]
    before = snapshot(database_url)
    latencies = sorted(asyncio.run(open_loop(port, requests, rate, warm=warm)))
    check(database_url, before, len(requests) + len(warm))
    return {"paced p50": percentile(latencies, 50) * 1000, "paced p99": percentile(latencies, 99) * 1000,
            "paced max": latencies[-1] * 1000}


# -- in-process, no HTTP (--extras) ---------------------------------------------------------------------
async def service_run(database_url: str, users: list[str], clients: int, seconds: float) -> tuple[int, float]:
    from tally.ledger import spending

    db = Database(database_url, pool_size=clients)
    run_id = os.urandom(4).hex()
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            await spending.spend(db, user_id=users[(c * 7919 + i) % len(users)], amount=1,
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


# -- one run: rounds of alternated measurements ------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    """One measurement, taken once per round: ``run`` returns its values by key (a rate per second, or ms)."""

    keys: dict[str, str]  # key → what it is, for the tables
    run: Callable[[], dict[str, float]]


def rate(key: str, label: str, run: Callable[[], float]) -> Measure:
    return Measure({key: label}, lambda: {key: run()})


def http(key: str, label: str, run: Callable[[], tuple[float, float]]) -> Measure:
    def both() -> dict[str, float]:
        per_second, cpu_ms = run()
        return {f"http {key}": per_second, f"cpu {key}": cpu_ms}

    return Measure({f"http {key}": label, f"cpu {key}": f"API CPU per spend: {label}"}, both)


def plan(args: argparse.Namespace, database_url: str, api: int, port: int, peer_url: str | None) -> list[Measure]:
    seconds, top = args.seconds, max(args.clients)
    measures = []
    for shape, where in SHAPES.items():
        hot = shape == "hot"
        for c in args.clients:
            if peer_url is not None:
                measures.append(rate(f"pgledger {shape} {c}", f"pgledger transfer (pgbench), {PEER_SHAPES[shape]}, "
                                     f"{c} clients",
                                     lambda hot=hot, c=c: pgledger_transfers(peer_url, hot, seconds, c)))
            measures.append(rate(f"statement {shape} {c}", f"Tally's spend statement bare (pgbench), {where}, "
                                 f"{c} clients", lambda hot=hot, c=c: statement_spends(database_url, hot, seconds, c)))
            measures.append(http(f"{shape} {c}", f"`POST /v1/credits/spend` (HTTP), {where}, {c} clients",
                                 lambda hot=hot, c=c: http_spends(database_url, api, port, hot, c, seconds)))
        measures.append(rate(f"group {shape} {top}", f"Tally's group transaction bare, {GROUP} spends per "
                             f"transaction (pgbench), {where}, {top} clients",
                             lambda hot=hot: group_spends(database_url, hot, seconds, top)))
        if args.extras:
            measures.append(rate(f"bare {shape} {top}", f"bare `UPDATE ... RETURNING` (pgbench), {where}, {top} "
                                 f"clients", lambda hot=hot: bare_updates(database_url, hot, seconds, top)))
            measures.append(http(f"fastapi {shape} {top}", f"the same through FastAPI's own route (no fast path), "
                                 f"{where}, {top} clients",
                                 lambda hot=hot: http_spends(database_url, api, port, hot, top, seconds,
                                                             JSON_FOR_FASTAPI)))
            measures.append(rate(f"service {shape} {top}", f"`spending.spend` in-process, {where}, {top} tasks",
                                 lambda hot=hot: service_spends(database_url, hot, top, seconds)))
    measures.append(rate(f"holds many {top}", f"hold + capture pairs (HTTP), {USERS} users, {top} clients",
                         lambda: http_hold_pairs(database_url, port, top, seconds)))
    paced = f"spends paced at {args.paced_rate:,.0f}/s (HTTP), {USERS} users"
    measures.append(Measure({f"paced {p}": f"{p} latency, {paced}" for p in ("p50", "p99", "max")},
                            lambda: paced_latency(database_url, port, args.paced_rate, args.paced_seconds)))
    return measures


def run_rounds(measures: list[Measure], rounds: int) -> dict[str, list[float]]:
    """Every measure once per round, in reverse order every other round (what runs first or last in a round
    meets a different machine: a cold cache, a neighbour's job)."""
    results: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        for measure in measures if r % 2 == 0 else measures[::-1]:
            values = measure.run()
            for key, value in values.items():
                results[key].append(value)
                print(f"round {r + 1}/{rounds}: {measure.keys[key]}: {show(key, value)}", flush=True)
    return results


def show(key: str, value: float) -> str:
    if key.startswith("cpu"):
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if key.startswith("paced") else f"{value:,.0f}/s"


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(min(values))} | {fmt(statistics.median(values))} | {fmt(max(values))}"


# -- ratios ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    label: str
    numerator: list[str]  # per round, the best of these keys (the client counts measured)
    denominator: list[str]
    goal: float | None  # at least this much, in every round


def ratios(clients: list[int]) -> list[Ratio]:
    top = max(clients)

    def each(kind: str, shape: str) -> list[str]:
        return [f"{kind} {shape} {c}" for c in clients]

    return [
        Ratio(f"HTTP spends, {USERS} users, {top} clients / pgledger transfers, {USERS} accounts (its best client "
              f"count)", [f"http many {top}"], each("pgledger", "many"), 1.0),
        Ratio(f"HTTP spends, one hot user, {top} clients / pgledger transfers, one hot account (its best)",
              [f"http hot {top}"], each("pgledger", "hot"), 1.0),
        Ratio(f"HTTP hold + capture pairs, {USERS} users, {top} clients / pgledger transfers, {USERS} accounts "
              f"(its best)", [f"holds many {top}"], each("pgledger", "many"), 0.5),
        Ratio(f"Tally's spend statement bare / pgledger transfers, {USERS} accounts (each at its best)",
              each("statement", "many"), each("pgledger", "many"), None),
        Ratio("Tally's spend statement bare / pgledger transfers, one hot account (each at its best)",
              each("statement", "hot"), each("pgledger", "hot"), None),
        Ratio(f"Tally's group transaction bare ({GROUP} spends) / one spend per statement, {USERS} users, {top} "
              f"clients", [f"group many {top}"], [f"statement many {top}"], None),
        Ratio(f"HTTP spends / the same statement bare, {USERS} users, {top} clients", [f"http many {top}"],
              [f"statement many {top}"], None),
        Ratio(f"HTTP spends / the same statement bare, one hot user, {top} clients", [f"http hot {top}"],
              [f"statement hot {top}"], None),
    ]


def ratio_row(ratio: Ratio, results: dict[str, list[float]], rounds: int) -> str:
    goal = "" if ratio.goal is None else f"≥ {ratio.goal:g}"
    if any(k not in results for k in (ratio.numerator[0], ratio.denominator[0])):
        return f"| {ratio.label} | not measured: no pgledger checkout given (--pgledger PATH) | | | {goal} |"
    per_round = [max(results[k][r] for k in ratio.numerator) / max(results[k][r] for k in ratio.denominator)
                 for r in range(rounds)]
    if ratio.goal is not None:
        met = sum(value >= ratio.goal for value in per_round)
        goal += f" {verdict(met == rounds)} ({met} of {rounds} rounds)"
    return f"| {ratio.label} | {spread(per_round, lambda v: f'{v:.2f}x')} | {goal} |"


def report(measures: list[Measure], results: dict[str, list[float]], args: argparse.Namespace) -> None:
    print()
    print(f"| measure ({args.rounds} rounds) | min | median | max |")
    print("|---|---|---|---|")
    for measure in measures:
        for key, label in measure.keys.items():
            print(f"| {label} | {spread(results[key], lambda v, key=key: show(key, v))} |")
    print()
    print(f"| ratio, within each round ({args.rounds} rounds) | min | median | max | goal |")
    print("|---|---|---|---|---|")
    for ratio in ratios(args.clients):
        print(ratio_row(ratio, results, args.rounds))
    p99 = results["paced p99"]
    met = sum(v < 10 for v in p99)
    print(f"| p99 at a paced {args.paced_rate:,.0f} spends/s | {spread(p99, lambda v: f'{v:.1f} ms')} | "
          f"< 10 ms {verdict(met == args.rounds)} ({met} of {args.rounds} rounds) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pgledger", help=f"a pgledger checkout (default ${pgledger_peer.ENV}); without it the "
                                           "pgledger rows are skipped")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5, help="per measurement")
    parser.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")], default=[8, 32])
    parser.add_argument("--paced-rate", type=float, default=1000, help="spends/s of the latency run")
    parser.add_argument("--paced-seconds", type=float, default=5)
    parser.add_argument("--extras", action="store_true",
                        help="also FastAPI's own route, the bare UPDATE and spending.spend in-process")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes serving the API")
    parser.add_argument("--database", default="auto", choices=["auto", "external", "embedded"])
    args = parser.parse_args()
    peer = pgledger_peer.checkout(args.pgledger)

    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(args.database))
        seed(database_url)
        peer_url = None
        if peer is None:
            print(f"# pgledger rows skipped: no checkout given (--pgledger PATH or ${pgledger_peer.ENV}; "
                  "git clone https://github.com/pgr0ss/pgledger)", flush=True)
        else:
            peer_url = stack.enter_context(pgledger_peer.pgledger_database(database_url, peer, USERS))
        version = scalar(database_url, "SHOW server_version")
        print(f"# credit spend benchmark — PostgreSQL {version}, {os.cpu_count()} cores, clients "
              f"{','.join(map(str, args.clients))}, {args.api_workers} API processes, {args.seconds:g} s per "
              f"measurement, {args.rounds} rounds" + (f", pgledger from {peer}" if peer else ""), flush=True)
        port = free_port()
        api = start_api(tally_env(database_url, TALLY_JWT_SECRET=JWT_SECRET, TALLY_RATE_LIMITS="false"), port,
                        args.api_workers)
        stack.callback(stop_all, [api])
        measures = plan(args, database_url, api.pid, port, peer_url)
        results = run_rounds(measures, args.rounds)
    report(measures, results, args)


if __name__ == "__main__":
    main()
