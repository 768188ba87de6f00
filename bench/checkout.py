"""Tally's own overhead per checkout creation: ``POST /v1/checkout`` timed at the client, minus the time the
Stripe call took at the (offline) Stripe sandbox for that same checkout, p50/p99, in the same run.

    .venv/bin/python bench/checkout.py [--checkouts 400] [--clients 1,4]

Setup: Tally's API under uvicorn (``--api-workers`` processes) against the sandbox in a process of its
own (``bench/timed_sandbox.py``, which logs each call's server time by its idempotency key). Every user
checks out once before the measurement, so that the Stripe customer and the pack's price exist and each
measured checkout makes exactly one Stripe call (``checkout.sessions.create``); the bench checks that.
Overhead = client-side latency − the sandbox's time for the call. It includes the JWT check, the user
row, the order insert, building the request, the SDK, the loopback hops and the commit. Rate limits are
switched off (``TALLY_RATE_LIMITS=false``). A last row times the same Stripe call made straight through
Tally's Stripe client: the SDK's own share.

Figures measured with this script, and where the time went: README, "Benchmarks".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (ROOT, Connection, data_dir, http_request, log_file, percentile, start_api,  # noqa: E402
                           stop_all, tally_env, verdict, wait_for)
from tally.stripe_gateway import SANDBOX_KEY, idempotency_key  # noqa: E402
from tests.tally_harness import fresh_database, free_port  # noqa: E402

JWT_SECRET = "bench-" + os.urandom(16).hex()
PACK = "starter"


def checkout_request(token: str) -> bytes:
    return http_request("POST", "/v1/checkout", orjson.dumps({"pack_id": PACK}),
                        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


async def run(port: int, tokens: list[str], per_client: int, clients: int) -> list[tuple[str, float]]:
    """(order id, client-side milliseconds) for every checkout."""
    results: list[tuple[str, float]] = []

    async def client(c: int) -> None:
        conn = Connection("127.0.0.1", port)
        for i in range(per_client):
            request = checkout_request(tokens[(c + i * clients) % len(tokens)])
            started = time.perf_counter()
            status, body = await conn.send(request)
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"checkout answered {status}: {body[:300]!r}")
            results.append((orjson.loads(body)["order_id"], elapsed))
        conn.close()

    await asyncio.gather(*(client(c) for c in range(clients)))
    return results


async def sdk_alone(base: str, count: int) -> list[float]:
    """Client-side milliseconds of the same ``checkout.sessions.create`` made straight through Tally's
    Stripe client (``tally.stripe_gateway``), one at a time: the SDK's own share of the overhead."""
    import stripe

    from tally.stripe_gateway import close_client, make_client

    # Any price and customer of the sandbox will do: found with the SDK itself (the gateway names only the
    # calls Tally makes), before the timing starts.
    lookup = stripe.StripeClient(SANDBOX_KEY, base_addresses={"api": base}, max_network_retries=0)
    price = lookup.v1.prices.list(params={"limit": 1}).data[0].id
    customer = lookup.v1.customers.list(params={"limit": 1}).data[0].id
    client = make_client(SANDBOX_KEY, base)
    params = {"mode": "payment", "customer": customer, "line_items": [{"price": price, "quantity": 1}],
              "client_reference_id": "bench", "metadata": {"order_id": "bench"},
              "payment_intent_data": {"metadata": {"order_id": "bench"}},
              "success_url": "http://127.0.0.1:9/s", "cancel_url": "http://127.0.0.1:9/c"}
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await client.create_checkout_session(params, idempotency_key=None)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await close_client(client)
    return sorted(times)


def stripe_times(log: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        key, ms = line.rsplit(" ", 1)
        times.setdefault(key, []).append(float(ms))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", type=int, default=400, help="measured checkouts per concurrency level")
    parser.add_argument("--clients", default="1,4", help="concurrent clients, one measurement each")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--database", default="auto", choices=["auto", "external", "embedded"])
    args = parser.parse_args()

    sandbox_log = Path(data_dir()) / "times.log"
    sandbox_port, port = free_port(), free_port()
    rows = []
    with fresh_database(args.database) as database_url:
        sandbox = subprocess.Popen([sys.executable, "-m", "bench.timed_sandbox", "--port", str(sandbox_port),
                                    "--log", str(sandbox_log)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=log_file("sandbox"))
        procs = [sandbox]
        try:
            wait_for(lambda: sandbox_log.exists(), 30)
            env = tally_env(database_url, STRIPE_SECRET_KEY=SANDBOX_KEY,
                            STRIPE_API_BASE=f"http://127.0.0.1:{sandbox_port}", TALLY_JWT_SECRET=JWT_SECRET,
                            TALLY_RATE_LIMITS="false", TALLY_PUBLIC_URL="http://127.0.0.1:9")
            procs.append(start_api(env, port, args.api_workers))
            print(f"# checkout overhead benchmark — {os.cpu_count()} cores, {args.api_workers} API processes, "
                  f"{args.checkouts} checkouts per row, {args.users} users", flush=True)
            tokens = [jwt.encode({"sub": f"bench-{i}", "exp": int(time.time()) + 3600}, JWT_SECRET,
                                 algorithm="HS256") for i in range(args.users)]
            # Warm-up: every user's Stripe customer, each API process's price cache and connections.
            asyncio.run(run(port, tokens, 2, len(tokens)))
            for clients in [int(c) for c in args.clients.split(",")]:
                results = asyncio.run(run(port, tokens, max(1, args.checkouts // clients), clients))
                time.sleep(0.2)  # the sandbox's last log lines
                times = stripe_times(sandbox_log)
                stripe, overhead, total = [], [], []
                for order_id, elapsed in results:
                    calls = times.get(idempotency_key("order", order_id, "checkout"), [])
                    if len(calls) != 1:
                        raise RuntimeError(f"order {order_id}: {len(calls)} checkout calls at the sandbox")
                    stripe.append(calls[0])
                    total.append(elapsed)
                    overhead.append(elapsed - calls[0])
                other = sum(len(v) for k, v in times.items() if not k.startswith("tally:order:"))
                for values in (stripe, overhead, total):
                    values.sort()
                row = {"clients": clients, "n": len(results),
                       **{f"{name}_p{p}": percentile(values, p) for name, values in
                          (("total", total), ("stripe", stripe), ("overhead", overhead)) for p in (50, 99)}}
                rows.append(row)
                print(f"{clients} client(s): checkout p50 {row['total_p50']:.1f} ms / p99 {row['total_p99']:.1f} ms;"
                      f" Stripe (sandbox) p50 {row['stripe_p50']:.1f} / p99 {row['stripe_p99']:.1f} ms; "
                      f"overhead p50 {row['overhead_p50']:.1f} / p99 {row['overhead_p99']:.1f} ms "
                      f"({other} other Stripe calls in all, from the warm-up)", flush=True)
            sdk = asyncio.run(sdk_alone(f"http://127.0.0.1:{sandbox_port}", args.checkouts))
            print(f"the same Stripe call straight through the SDK: p50 {percentile(sdk, 50):.1f} / "
                  f"p99 {percentile(sdk, 99):.1f} ms", flush=True)
        finally:
            stop_all(procs)

    print()
    print("| clients | checkouts | checkout p50 / p99 | Stripe call at the sandbox p50 / p99 | "
          "Tally overhead p50 / p99 | overhead share of p50 | goal |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['n']} | {r['total_p50']:.1f} / {r['total_p99']:.1f} ms | "
              f"{r['stripe_p50']:.1f} / {r['stripe_p99']:.1f} ms | {r['overhead_p50']:.1f} / "
              f"{r['overhead_p99']:.1f} ms | {r['overhead_p50'] / r['total_p50']:.0%} | "
              f"p99 < 15 ms {verdict(r['overhead_p99'] < 15)} |")
    print(f"| the Stripe call alone through the SDK, 1 client | {len(sdk)} | {percentile(sdk, 50):.1f} / "
          f"{percentile(sdk, 99):.1f} ms | | | | |")


if __name__ == "__main__":
    main()
