"""Throughput and webhook latency of ``stripe_sandbox``, beside localstripe on the calls both support.

    .venv/bin/python bench/sandbox.py            # about two minutes
    .venv/bin/python bench/sandbox.py --seconds 1 --no-localstripe

Every server runs in a process of its own, so that clients and server do not share one GIL. Clients are
processes too: the official SDK spends about 2 ms of CPU per call (requests + StripeObject building), so
on a 2-core machine SDK clients saturate before the server does. The bench therefore measures each row
with light HTTP clients (``http.client``, keep-alive, the exact form bodies the SDK sends: what the server
can do) and, for the empty store, with ``stripe.StripeClient`` clients (what an SDK application sees).

The 100 000-object store is filled inside the server process, straight into the store, before it serves.
localstripe (``pip install localstripe``, the ``bench`` extra) is started with ``--from-scratch``.
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


def serve_sandbox(port: int, preload: int) -> None:
    """The ``--serve`` mode: a sandbox holding ``preload`` customers, filled before it listens."""
    import uvicorn

    from stripe_sandbox.app import create_app
    from stripe_sandbox.config import SandboxConfig
    from stripe_sandbox.ids import new_id
    from stripe_sandbox.state import Sandbox

    sb = Sandbox(SandboxConfig(port=port, webhook_url=None, webhook_secret=None, webhook_retry_delays=(0.5,)))
    now = sb.clock.now_int()
    template = {"object": "customer", "address": None, "balance": 0, "created": now, "currency": None,
                "default_source": None, "delinquent": False, "description": None, "discount": None,
                "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                     "rendering_options": None},
                "livemode": False, "metadata": {}, "name": None, "next_invoice_sequence": 1, "phone": None,
                "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None}
    started = time.perf_counter()
    for i in range(preload):
        customer_id = new_id("cus", 14)
        sb.store.add({**template, "id": customer_id, "email": f"user{i % 5000}@example.com",
                      "invoice_prefix": customer_id[4:12].upper()})
    if preload:
        print(f"preloaded {preload} customers in {time.perf_counter() - started:.1f}s", flush=True)
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
    """One keep-alive connection; a few microseconds per call of client overhead."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port)

    def post(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.conn.request("POST", path, body=form(params), headers=AUTH)
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
    ours: dict[tuple[str, str, int, str], float | None] = {}

    def run_rows(server: Server, store: str, kinds: list[str], only: list[str] | None = None) -> None:
        ctx = context_for(server)
        for op_name, (label, _) in OPERATIONS.items():
            if only is not None and op_name not in only:
                continue
            if server.name == "stripe_sandbox" and ops[op_name]:
                if (label, store) not in [(r["label"], r["store"]) for r in rows if r.get("skip")]:
                    rows.append({"label": label, "store": store, "skip": ops[op_name]})
                continue
            for kind in kinds:
                for clients in (1, 8):
                    rate, error, cpu_ms = measure(pool, server, op_name, kind, clients, args.seconds, ctx,
                                                  args.repeats)
                    if error:
                        notes.append(f"{server.name}, {label}, {clients} {kind} client(s): {error}")
                    ours_or_theirs = (op_name, kind, clients, store)
                    if server.name == "stripe_sandbox":
                        ours[ours_or_theirs] = rate
                        rows.append({"label": label, "op": op_name, "kind": kind, "clients": clients,
                                     "store": store, "ours": rate, "cpu_ms": cpu_ms})
                    else:
                        for row in rows:
                            if (row.get("op"), row.get("kind"), row.get("clients"), row.get("store")) == \
                                    ours_or_theirs:
                                row["theirs"] = rate
                                row["theirs_error"] = error

    kinds = ["raw"] if args.no_sdk else ["raw", "sdk"]
    empty = start_sandbox(0)
    try:
        run_rows(empty, "empty", kinds)
        latency = webhook_latency(empty, args.webhook_events)
    finally:
        empty.stop()
    full = start_sandbox(args.preload)
    try:
        run_rows(full, f"{args.preload // 1000}k", ["raw"])
    finally:
        full.stop()

    theirs_note = None
    if not args.no_localstripe:
        local = start_localstripe()
        if local is None:
            theirs_note = "localstripe is not installed: pip install -e '.[bench]'"
        else:
            try:
                run_rows(local, "empty", kinds, only=["customer", "payment_intent"])
            finally:
                local.stop()
    pool.close()

    load = f"{load_before} -> {Path('/proc/loadavg').read_text().split()[0]}"
    print_table(rows, latency, args, theirs_note, notes, time.perf_counter() - began, load)


def _fmt(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def print_table(rows: list[dict[str, Any]], latency: dict[str, float], args: argparse.Namespace,
                theirs_note: str | None, notes: list[str], elapsed: float, load: str) -> None:
    print()
    print(f"stripe_sandbox bench: {os.cpu_count()} CPUs (load average {load}), best of {args.repeats} x "
          f"{args.seconds:g} s per row; clients are processes")
    print("  client: raw = light HTTP client (what the server can do), sdk = stripe.StripeClient; n = clients")
    print("  srv ms = server CPU per operation; 1 core/s = 1000 / srv ms, the rate of one undisturbed core")
    header = f"{'operation':<46} {'store':>6} {'client':>6} {'n':>2} {'ours/s':>8} {'srv ms':>6} " \
             f"{'1 core/s':>8} {'localstripe/s':>13} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        if row.get("skip"):
            print(f"{row['label']:<46} {row['store']:>6}  {row['skip']}")
            continue
        theirs = row.get("theirs")
        ratio = f"{row['ours'] / theirs:,.0f}x" if theirs and row["ours"] else "-"
        theirs_text = _fmt(theirs) if "theirs" in row else "-"
        print(f"{row['label']:<46} {row['store']:>6} {row['kind']:>6} {row['clients']:>2} {_fmt(row['ours']):>8} "
              f"{row['cpu_ms']:>6.2f} {1000 / row['cpu_ms'] if row['cpu_ms'] else 0:>8,.0f} {theirs_text:>13} "
              f"{ratio:>7}")
    print()
    print(f"webhook delivery, event -> receiver's 200 ({latency['count']} events, one endpoint, ~200 events/s): "
          f"p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms, max {latency['max']:.1f} ms, "
          f"failed attempts {latency['failed']}")
    print()
    print("goals:")

    def rate(op: str, store: str, kind: str = "raw", clients: int = 8) -> float | None:
        for row in rows:
            if (row.get("op"), row.get("store"), row.get("kind"), row.get("clients")) == (op, store, kind, clients):
                return row["ours"]
        return None

    full = f"{args.preload // 1000}k"
    checks = [("customer creations/s, 8 clients >= 1000", rate("customer", "empty"), 1000),
              ("PaymentIntent create+confirm/s, 8 clients >= 300", rate("payment_intent", "empty"), 300)]
    for label, value, goal in checks:
        verdict = "n/a" if value is None else ("met" if value >= goal else "MISSED")
        print(f"  {label:<52} {_fmt(value):>8}  {verdict}")
    def cpu(op: str, store: str) -> float | None:
        for row in rows:
            if (row.get("op"), row.get("store"), row.get("kind"), row.get("clients")) == (op, store, "raw", 8):
                return row["cpu_ms"] or None
        return None

    for op in OPERATIONS:
        a, b = rate(op, "empty"), rate(op, full)
        if a and b:
            change = (b - a) / a * 100
            print(f"  {op + ': empty -> ' + full + ' within 20 % (ops/s)':<52} {change:>+7.1f}%  "
                  f"{'met' if change >= -20 else 'MISSED'}")
        ca, cb = cpu(op, "empty"), cpu(op, full)
        if ca and cb:
            change = (cb - ca) / ca * 100
            print(f"  {op + ': empty -> ' + full + ' (server CPU per op)':<52} {change:>+7.1f}%  "
                  f"{'met' if change <= 20 else 'MISSED'}")
    print(f"  {'each webhook within 100 ms (max)':<52} {latency['max']:>6.1f}ms  "
          f"{'met' if latency['max'] <= 100 else 'MISSED'}")
    if theirs_note:
        print(f"\nnote: {theirs_note}")
    for note in notes:
        print(f"note: {note}")
    print(f"\n(bench took {elapsed:.0f} s)")


if __name__ == "__main__":
    import urllib.request  # noqa: F401 - used by webhook_latency

    main()
