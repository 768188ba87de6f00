"""Throughput and webhook latency of ``stripe_sandbox``, beside localstripe on the calls both support.

    .venv/bin/python bench/sandbox.py            # about two and a half minutes
    .venv/bin/python bench/sandbox.py --seconds 1 --repeats 1 --no-localstripe
    make bench / make bench-quick                # bench/run_all.py runs it with the others

Every server runs in a process of its own, so that clients and server do not share one GIL. Clients are
processes too: the official SDK spends more CPU per call (requests + StripeObject building) than the server
does, so on a small machine SDK clients saturate before the server does. The bench therefore measures each row
with light HTTP clients (``http.client``, keep-alive, the exact form bodies the SDK sends, a fresh
``Idempotency-Key`` on each POST as the SDK sends: what the server can do) and, for the empty store, with
``stripe.StripeClient`` clients (what an SDK application sees).

The 100 000-object store is a shop's mix (``PRELOAD_MIX``: events, customers, PaymentIntents with their charges,
completed Checkout Sessions, products, prices), filled inside the server process through the store and its
indexes before it serves. The empty and the full sandbox run side by side and their windows alternate, so
that both see the same load from the rest of the machine. The sandbox runs as the command line runs it
(``freeze_gc``: without it a full garbage collection over 100 000 objects stalled it for about a second).
localstripe (``pip install localstripe``, the ``bench`` extra) is started with ``--from-scratch``.

Figures measured with this script, and where the time went: README, "Benchmarks".
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUTH = {"Authorization": "Bearer sk_test_bench", "Content-Type": "application/x-www-form-urlencoded"}


# -- servers --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# The preloaded store's mix, in percent: what a shop's sandbox holds after a while (events outnumber the rest).
PRELOAD_MIX = {"event": 35, "customer": 25, "payment_intent": 12, "charge": 12, "checkout.session": 6,
               "product": 5, "price": 5}


def preload_store(sb: Any, count: int) -> dict[str, int]:
    """Fill the store with ``count`` objects in ``PRELOAD_MIX``: one of each made through the API's own
    handlers, then copies with fresh ids written straight into the store (each through its indexes:
    customers by email, charges and sessions by PaymentIntent and customer, events by type)."""
    import orjson

    from stripe_sandbox.params import Params
    from stripe_sandbox.resources.checkout_sessions import EXTRAS_TYPE
    from stripe_sandbox.routing import ROUTES

    def call(path: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = next(r.handler for r in ROUTES if r.method == "POST" and r.path == path)
        return handler(sb, Params(params))

    customer = call("/v1/customers", {"email": "seed@example.com", "name": "Seed"})
    product = call("/v1/products", {"name": "Seed"})
    price = call("/v1/prices", {"product": product["id"], "currency": "usd", "unit_amount": "1500"})
    pi = call("/v1/payment_intents", {"amount": "2000", "currency": "usd", "payment_method": "pm_card_visa",
                                      "payment_method_types": ["card"], "customer": customer["id"],
                                      "confirm": "true"})
    session = call("/v1/checkout/sessions", {
        "mode": "payment", "success_url": "https://example.com/ok", "cancel_url": "https://example.com/back",
        "customer": customer["id"], "line_items": [{"price": price["id"], "quantity": "1"}]})
    store = sb.store
    templates = {"customer": customer, "product": product, "price": price, "payment_intent": pi,
                 "charge": store.objects[pi["latest_charge"]], "checkout.session": session}
    events = [store.objects[i] for i in store.collection("event").ids]
    plan = {kind: count * share // 100 for kind, share in PRELOAD_MIX.items()}
    plan["event"] += count - sum(plan.values())
    made: dict[str, list[str]] = {kind: [] for kind in plan}
    serial = iter(range(10**9))

    def clone(template: dict[str, Any], **changes: Any) -> dict[str, Any]:
        obj = orjson.loads(orjson.dumps(template))
        obj["id"] = f"{template['id'][:-8]}{next(serial):08x}"
        obj.update(changes)
        return obj

    for i in range(plan["customer"]):
        made["customer"].append(store.add(clone(customer, email=f"user{i % 5000}@example.com"))["id"])
    for kind in ("product", "price"):
        for _ in range(plan[kind]):
            made[kind].append(store.add(clone(templates[kind]))["id"])
    customers = made["customer"] or [customer["id"]]
    for i in range(plan["payment_intent"]):
        owner = customers[i * 7 % len(customers)]
        intent = store.add(clone(pi, customer=owner))
        made["payment_intent"].append(intent["id"])
        if i < plan["charge"]:
            made["charge"].append(store.add(clone(templates["charge"], payment_intent=intent["id"],
                                                  customer=owner))["id"])
    for i in range(plan["checkout.session"]):
        owner = customers[i * 11 % len(customers)]
        done = store.add(clone(session, customer=owner, status="complete", payment_status="paid", url=None))
        made["checkout.session"].append(done["id"])
        store.add({**orjson.loads(orjson.dumps(store.objects[f"{session['id']}~extras"])),
                   "id": f"{done['id']}~extras"}, EXTRAS_TYPE)
    for i in range(plan["event"]):
        made["event"].append(store.add(clone(events[i % len(events)]))["id"])
    return {kind: len(ids) for kind, ids in made.items()}


def serve_sandbox(port: int, preload: int) -> None:
    """The ``--serve`` mode: a sandbox holding ``preload`` objects, filled before it listens."""
    import uvicorn

    from stripe_sandbox.app import create_app
    from stripe_sandbox.config import SandboxConfig
    from stripe_sandbox.state import Sandbox

    sb = Sandbox(SandboxConfig(port=port, webhook_url=None, webhook_secret=None, webhook_retry_delays=(0.5,),
                               freeze_gc=True))  # as the command line runs it
    if preload:
        started = time.perf_counter()
        made = preload_store(sb, preload)
        mix = ", ".join(f"{n} {kind}" for kind, n in made.items())
        print(f"preloaded {sb.store.count()} objects ({mix}) in {time.perf_counter() - started:.1f}s", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(sb=sb), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, timeout_keep_alive=60))
    server.run()


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_sandbox(preload: int) -> Server:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--preload", str(preload)],
                               cwd=ROOT)
    wait_port(port, process, timeout=120)
    return Server("stripe_sandbox", port, process)


def start_localstripe() -> Server | None:
    exe = shutil.which("localstripe", path=str(Path(sys.executable).parent))
    if exe is None:
        return None
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="localstripe-")
    process = subprocess.Popen([exe, "--port", str(port), "--from-scratch"], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, process)
    return Server("localstripe", port, process, workdir)


# -- operations -----------------------------------------------------------------------------------------
def form(params: dict[str, Any]) -> str:
    """Stripe's form encoding, as the SDK sends it (``a[b][0]=x``)."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else k, v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            pairs.append((prefix, "true" if value is True else "false" if value is False else str(value)))

    walk("", params)
    return urllib.parse.urlencode(pairs)


class Raw:
    """One keep-alive connection; a few microseconds per call of client overhead. Each POST carries a fresh
    ``Idempotency-Key``, as every official SDK's POST does, so the server saves each answer as it would."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port)

    def post(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.conn.request("POST", path, body=form(params), headers={**AUTH, "Idempotency-Key": str(uuid.uuid4())})
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {body[:300]!r}")
        return json.loads(body)


PI_PARAMS = {"amount": 2000, "currency": "usd", "payment_method_types": ["card"], "payment_method": "pm_card_visa"}


def op_customer(client: Any, ctx: dict[str, Any]) -> None:
    if isinstance(client, Raw):
        client.post("/v1/customers", {"email": "bench@example.com", "name": "Bench"})
    else:
        client.v1.customers.create(params={"email": "bench@example.com", "name": "Bench"})


def op_payment_intent(client: Any, ctx: dict[str, Any]) -> None:
    """Create with ``pm_card_visa``, then confirm: two calls, the form both servers support (localstripe
    answers "Not implemented" to a ``payment_method`` given at confirmation)."""
    if isinstance(client, Raw):
        pi = client.post("/v1/payment_intents", PI_PARAMS)
        done = client.post(f"/v1/payment_intents/{pi['id']}/confirm", {})
    else:
        pi = client.v1.payment_intents.create(params=PI_PARAMS)
        done = client.v1.payment_intents.confirm(pi.id)
    if done["status"] != "succeeded":
        raise RuntimeError(f"PaymentIntent {done['status']}")


def op_checkout(client: Any, ctx: dict[str, Any]) -> None:
    params = {"mode": "payment", "success_url": "https://example.com/ok?s={CHECKOUT_SESSION_ID}",
              "cancel_url": "https://example.com/back", "line_items": [{"price": ctx["price"], "quantity": 1}]}
    if isinstance(client, Raw):
        client.post("/v1/checkout/sessions", params)
    else:
        client.v1.checkout.sessions.create(params=params)


OPERATIONS: dict[str, tuple[str, Callable[[Any, dict[str, Any]], None]]] = {
    "customer": ("create customer", op_customer),
    "payment_intent": ("create + confirm PaymentIntent (pm_card_visa)", op_payment_intent),
    "checkout": ("create Checkout Session", op_checkout),
}


def _client(kind: str, url: str) -> Any:
    if kind == "raw":
        return Raw(url)
    import stripe

    return stripe.StripeClient("sk_test_bench", base_addresses={"api": url}, max_network_retries=0)


def _worker(args: tuple[str, str, str, dict[str, Any], float, float]) -> tuple[int, float, str | None]:
    op_name, kind, url, ctx, start_at, stop_at = args
    op = OPERATIONS[op_name][1]
    try:
        client = _client(kind, url)
        op(client, ctx)  # connect and warm up before the window opens
        while time.time() < start_at:
            time.sleep(0.0005)
        began = time.time()  # a client that was late to start counts from when it started
        count = 0
        while time.time() < stop_at:
            op(client, ctx)
            count += 1
        return count, time.time() - began, None
    except Exception as exc:  # a failing call makes the row "n/a", with the reason
        return 0, 0.0, f"{type(exc).__name__}: {str(exc)[:200]}"


def measure(pool: Any, server: Server, op_name: str, kind: str, clients: int, seconds: float,
            ctx: dict[str, Any], repeats: int) -> tuple[float | None, str | None, float]:
    """Best of ``repeats`` windows (this machine is shared: the best window is the least disturbed one), and
    the server's CPU milliseconds per operation over all windows."""
    best: float | None = None
    cpu_total, ops_total = 0.0, 0
    for _ in range(repeats):
        start_at = time.time() + 0.3
        args = [(op_name, kind, server.url, ctx, start_at, start_at + seconds)] * clients
        cpu_before = server.cpu_seconds()
        results = pool.map(_worker, args)
        cpu_total += server.cpu_seconds() - cpu_before
        errors = [e for _, _, e in results if e]
        if errors:
            return None, errors[0], 0.0
        total = sum(c for c, _, _ in results)
        ops_total += total
        rate = sum(c / t for c, t, _ in results if t > 0)
        best = rate if best is None else max(best, rate)
    return best, None, (cpu_total / ops_total * 1000 if ops_total else 0.0)


# -- webhook latency ------------------------------------------------------------------------------------
class FastReceiver:
    """Verifies the signature as a receiver should (``verify_header``), answers 200 at once."""

    def __init__(self) -> None:
        import stripe

        self.secret = ""
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stripe.WebhookSignature.verify_header(body.decode(), self.headers["Stripe-Signature"],
                                                      receiver.secret, 300)
                receiver.received += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhook_latency(server: Server, events: int) -> dict[str, float]:
    receiver = FastReceiver()
    try:
        raw = Raw(server.url)
        endpoint = raw.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events": ["customer.created"]})
        receiver.secret = endpoint["secret"]
        for _ in range(events):  # about 200 events/s, one client
            raw.post("/v1/customers", {"email": "hook@example.com"})
            time.sleep(0.004)
        deadline = time.monotonic() + 20
        while receiver.received < events and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(f"{server.url}/_sandbox/deliveries?endpoint={endpoint['id']}") as answer:
            attempts = json.loads(answer.read())["data"]
        delays = sorted(a["delay_ms"] for a in attempts if a["succeeded"] and a["attempt"] == 1)
        return {"count": len(delays), "failed": sum(1 for a in attempts if not a["succeeded"]),
                "p50": statistics.median(delays), "p99": delays[int(len(delays) * 0.99) - 1], "max": delays[-1]}
    finally:
        receiver.close()


# -- main -----------------------------------------------------------------------------------------------
def available_operations() -> dict[str, str | None]:
    """Operation -> None if the sandbox has it, else why its row is skipped."""
    resources = ROOT / "stripe_sandbox" / "resources"
    out: dict[str, str | None] = {"customer": None}
    pi = resources / "payment_intents.py"
    out["payment_intent"] = None if pi.exists() and "def confirm_payment_intent" in pi.read_text() else \
        "skipped: the payments module (resources/payment_intents.py) is not there yet"
    out["checkout"] = None if (resources / "checkout_sessions.py").exists() else \
        "skipped: resources/checkout_sessions.py is not there yet"
    return out


def context_for(server: Server) -> dict[str, Any]:
    raw = Raw(server.url)
    try:
        price = raw.post("/v1/prices", {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Bench"}})
        return {"price": price["id"]}
    except RuntimeError:
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring window per row")
    parser.add_argument("--repeats", type=int, default=2, help="windows per row; the best one counts")
    parser.add_argument("--preload", type=int, default=100_000)
    parser.add_argument("--no-localstripe", action="store_true")
    parser.add_argument("--no-sdk", action="store_true", help="skip the rows measured with SDK clients")
    parser.add_argument("--webhook-events", type=int, default=300)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_sandbox(args.serve, args.preload)
        return

    began = time.perf_counter()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    import stripe  # noqa: F401 - imported once here, so that forked SDK clients do not each pay for it

    ops = available_operations()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    pool = mp.get_context("fork").Pool(8)

    def add_row(server: Server, store: str, op_name: str, kind: str, clients: int, rate: float | None,
                error: str | None, cpu_ms: float) -> None:
        label = OPERATIONS[op_name][0]
        if error:
            notes.append(f"{server.name}, {store} store, {label}, {clients} {kind} client(s): {error}")
        if server.name == "stripe_sandbox":
            rows.append({"label": label, "op": op_name, "kind": kind, "clients": clients, "store": store,
                         "ours": rate, "cpu_ms": cpu_ms})
            return
        for row in rows:
            if (row.get("op"), row.get("kind"), row.get("clients"), row.get("store")) == (op_name, kind, clients,
                                                                                          store):
                row["theirs"] = rate

    def runnable(server: Server, store: str, only: list[str] | None = None) -> list[str]:
        out = []
        for op_name, (label, _) in OPERATIONS.items():
            if only is not None and op_name not in only:
                continue
            if server.name == "stripe_sandbox" and ops[op_name]:
                rows.append({"label": label, "store": store, "skip": ops[op_name]})
                continue
            out.append(op_name)
        return out

    def run_rows(server: Server, store: str, kinds: list[str], only: list[str] | None = None) -> None:
        ctx = context_for(server)
        for op_name in runnable(server, store, only):
            for kind in kinds:
                for clients in (1, 8):
                    add_row(server, store, op_name, kind, clients,
                            *measure(pool, server, op_name, kind, clients, args.seconds, ctx, args.repeats))

    def run_paired(servers: dict[str, Server]) -> None:
        """The stores side by side with raw clients, their windows alternating, so that both see the same
        load from the rest of this shared machine (the empty store first in each pair)."""
        contexts = {store: context_for(server) for store, server in servers.items()}
        first = next(iter(servers))
        for op_name in runnable(servers[first], first):
            for clients in (1, 8):
                found: dict[str, list[tuple[float | None, str | None, float]]] = {store: [] for store in servers}
                for _ in range(args.repeats):
                    for store, server in servers.items():
                        found[store].append(measure(pool, server, op_name, "raw", clients, args.seconds,
                                                    contexts[store], 1))
                for store, windows in found.items():
                    errors = [e for _, e, _ in windows if e]
                    rates = [r for r, _, _ in windows if r is not None]
                    add_row(servers[store], store, op_name, "raw", clients, max(rates) if rates else None,
                            errors[0] if errors else None, statistics.mean(c for _, _, c in windows))

    kinds = [] if args.no_sdk else ["sdk"]
    full_name = f"{args.preload // 1000}k"
    empty = start_sandbox(0)
    full = None
    try:
        full = start_sandbox(args.preload)
        run_paired({"empty": empty, full_name: full})
        run_rows(empty, "empty", kinds)
        latency = {"empty": webhook_latency(empty, args.webhook_events),
                   full_name: webhook_latency(full, args.webhook_events)}
    finally:
        empty.stop()
        if full is not None:
            full.stop()
    order = {op: i for i, op in enumerate(OPERATIONS)}
    rows.sort(key=lambda r: (r["store"] != "empty", order.get(r.get("op", ""), -1), r.get("kind", "")))

    theirs_note = None
    if not args.no_localstripe:
        local = start_localstripe()
        if local is None:
            theirs_note = "localstripe is not installed: pip install -e '.[bench]'"
        else:
            try:
                run_rows(local, "empty", ["raw", *kinds], only=["customer", "payment_intent"])
            finally:
                local.stop()
    pool.close()

    load = f"{load_before} -> {Path('/proc/loadavg').read_text().split()[0]}"
    print_table(rows, latency, args, theirs_note, notes, time.perf_counter() - began, load)


def _fmt(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def print_table(rows: list[dict[str, Any]], latency: dict[str, dict[str, float]], args: argparse.Namespace,
                theirs_note: str | None, notes: list[str], elapsed: float, load: str) -> None:
    """Markdown tables (``make bench`` copies the lines that start with ``|`` to bench/results.md)."""
    print()
    print(f"stripe_sandbox bench: {os.cpu_count()} CPUs (load average {load}), best of {args.repeats} x "
          f"{args.seconds:g} s per row; clients are processes")
    print("client: raw = light HTTP client (what the server can do), sdk = stripe.StripeClient; n = clients; "
          "srv ms = server CPU per operation; 1 core/s = 1000 / srv ms, the rate of one undisturbed core; "
          "ratio = ours / localstripe's")
    print()
    print("| operation | store | client | n | ours/s | srv ms | 1 core/s | localstripe/s | ratio |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|")
    for row in rows:
        if row.get("skip"):
            print(f"| {row['label']} | {row['store']} | {row['skip']} | | | | | | |")
            continue
        theirs = row.get("theirs")
        ratio = f"{row['ours'] / theirs:,.0f}x" if theirs and row["ours"] else "-"
        theirs_text = _fmt(theirs) if "theirs" in row else "-"
        core = f"{1000 / row['cpu_ms']:,.0f}" if row["cpu_ms"] else "-"
        print(f"| {row['label']} | {row['store']} | {row['kind']} | {row['clients']} | {_fmt(row['ours'])} | "
              f"{row['cpu_ms']:.2f} | {core} | {theirs_text} | {ratio} |")
    print()

    def find(op: str, store: str, field: str, kind: str = "raw", clients: int = 8) -> float | None:
        for row in rows:
            if (row.get("op"), row.get("store"), row.get("kind"), row.get("clients")) == (op, store, kind, clients):
                return row[field] or None
        return None

    full = f"{args.preload // 1000}k"
    goals: list[tuple[str, str, bool | None]] = []
    for label, op, goal in (("customer creations/s, 8 clients >= 1000", "customer", 1000),
                            ("PaymentIntent create+confirm/s, 8 clients >= 300", "payment_intent", 300)):
        value = find(op, "empty", "ours")
        goals.append((label, _fmt(value), None if value is None else value >= goal))
    for op in OPERATIONS:
        a, b = find(op, "empty", "ours"), find(op, full, "ours")
        if a and b:
            change = (b - a) / a * 100
            goals.append((f"{op}: empty -> {full} within 20 % (ops/s)", f"{change:+.1f} %", change >= -20))
        ca, cb = find(op, "empty", "cpu_ms"), find(op, full, "cpu_ms")
        if ca and cb:
            change = (cb - ca) / ca * 100
            goals.append((f"{op}: empty -> {full} within 20 % (server CPU per op)", f"{change:+.1f} %",
                          change <= 20))
    for store, found in latency.items():
        goals.append((f"each webhook delivered within 100 ms of its event (max, {store} store)",
                      f"{found['max']:.1f} ms", found["max"] <= 100))
    print("| goal | measured | verdict |")
    print("|---|--:|---|")
    for label, value_text, ok in goals:
        print(f"| {label} | {value_text} | {'n/a' if ok is None else 'met' if ok else 'MISSED'} |")
    print()
    for store, found in latency.items():
        print(f"webhook delivery, {store} store, event -> receiver's 200 ({found['count']} events, one endpoint, "
              f"~200 events/s): p50 {found['p50']:.1f} ms, p99 {found['p99']:.1f} ms, max {found['max']:.1f} ms, "
              f"failed attempts {found['failed']}")
    if theirs_note:
        print(f"note: {theirs_note}")
    for note in notes:
        print(f"note: {note}")
    print(f"(bench took {elapsed:.0f} s)")


if __name__ == "__main__":
    import urllib.request  # noqa: F401 - used by webhook_latency

    main()
