"""Real processes for fault tests: ``tally serve`` (the API and webhook receiver) and ``tally worker``s on a fresh
database, with the Stripe sandbox in the test process delivering webhooks to the API over HTTP. Processes can be
SIGKILLed and restarted, the database's connections terminated, the sandbox told to fail; afterwards the
helpers here check the outcome that must hold whatever happened: every paid order credited exactly once, no
event left unprocessed, and ``tally ledger check`` passing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import stripe

from stripe_sandbox import SandboxConfig, SandboxServer
from tally.auth.service import issue_dev_token
from tally.config import Settings
from tally.runtime import WEBHOOK_PATH
from tests.integration.purchase_flow import VISA
from tests.tally_harness import free_port
from tests.waiting import poll, sql_at

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PROBE_MODULE = "tests.integration.webhook_probe_handlers"


@dataclass(frozen=True)
class Scale:
    orders: int  # real purchases paid on the sandbox (each raises 6-7 Stripe events)
    probe_events: int  # cheap extra events that record each processing (see webhook_probe_handlers)
    workers: int
    worker_concurrency: int
    kill_every: tuple[float, float]  # seconds between two SIGKILLs, drawn uniformly
    min_kills: int  # the chaos lasts at least this many kills

    @classmethod
    def ci(cls) -> Scale:
        return cls(orders=15, probe_events=400, workers=3, worker_concurrency=4, kill_every=(0.2, 0.6),
                   min_kills=12)

    @classmethod
    def long(cls) -> Scale:
        return cls(orders=200, probe_events=3000, workers=4, worker_concurrency=8, kill_every=(0.2, 0.6),
                   min_kills=60)


sql = sql_at  # the fault tests hold database URLs, not servers


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    return poll(predicate, timeout=timeout, what=what, every=every)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    ready_at: float | None = None  # when its start line was first seen (time.monotonic())

    def alive(self) -> bool:
        return self.popen.poll() is None

    def working_for(self, start_line: str = "tally worker:") -> float:
        """Seconds since the process printed its start line (0 while still starting)."""
        if self.ready_at is None:
            try:
                with self.log.open("rb") as f:
                    if start_line.encode() not in f.read(4096):
                        return 0.0
            except OSError:
                return 0.0
            self.ready_at = time.monotonic()
        return time.monotonic() - self.ready_at

    def tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.name} (pid {self.popen.pid}, rc {self.popen.poll()}) ---\n" + \
                self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Cluster:
    """``tally serve`` on a fixed port + ``tally worker`` processes + a sandbox that delivers to the API."""

    database_url: str
    api_worker: bool = False  # run a worker inside the API process too
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)  # the sandbox's webhook retries
    api_command: list[str] | None = None  # another way to serve the API (see crashing_receiver.py)
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: "whsec_faults_" + uuid.uuid4().hex)
    jwt_secret: str = field(default_factory=lambda: "faults-jwt-" + uuid.uuid4().hex)
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tally-faults-")))

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox = SandboxServer(SandboxConfig(
            port=0, webhook_url=self.url + WEBHOOK_PATH, webhook_secret=self.secret, async_settle_seconds=1.0,
            webhook_retry_delays=self.retry_delays, webhook_timeout=10.0))
        self.api: Proc | None = None
        self.workers: list[Proc] = []
        self.dead: list[Proc] = []  # killed or exited processes, for their logs
        self._count = 0
        self._lock = threading.Lock()

    # -- processes ------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "TALLY_DATABASE_URL": self.database_url, "STRIPE_API_BASE": self.sandbox.url,
                "STRIPE_WEBHOOK_SECRET": self.secret, "TALLY_JWT_SECRET": self.jwt_secret,
                "TALLY_PUBLIC_URL": self.url, "TALLY_DATA_DIR": str(self.logs / "data"),
                "TALLY_HANDLER_MODULES": PROBE_MODULE, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                "TALLY_LOG_FORMAT": "json", **extra}

    def _spawn(self, name: str, command: list[str], **extra_env: str) -> Proc:
        with self._lock:
            self._count += 1
            log = self.logs / f"{self._count:04d}-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(command, env=self.env(**extra_env), cwd=ROOT, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return Proc(name, popen, log)

    def start_api(self, *args: str, **extra_env: str) -> Proc:
        command = self.api_command or [str(BIN / "tally"), "serve"]
        command = [*command, "--port", str(self.port), *(() if self.api_worker else ("--no-worker",)), *args]
        self.api = self._spawn("api", command, **extra_env)
        wait_until(self.api_ready, 60, "the API to answer /healthz", every=0.1)
        return self.api

    def api_ready(self) -> bool:
        assert self.api is not None
        if not self.api.alive():
            raise AssertionError("the API exited\n" + self.api.tail())
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, concurrency: int = 4) -> Proc:
        proc = self._spawn("worker", [str(BIN / "tally"), "worker", "--concurrency", str(concurrency)])
        with self._lock:
            self.workers.append(proc)
        return proc

    def kill(self, proc: Proc) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine loses the process."""
        try:
            os.killpg(proc.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.popen.wait(timeout=30)
        with self._lock:
            if proc in self.workers:
                self.workers.remove(proc)
            self.dead.append(proc)

    def stop_gracefully(self, proc: Proc) -> None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill(proc)

    def start(self) -> Cluster:
        self.sandbox.start()
        sql(self.database_url, "CREATE TABLE IF NOT EXISTS probe_credits (event_id text NOT NULL, pid int NOT NULL)")
        return self

    def stop(self) -> None:
        for proc in [*self.workers, *([self.api] if self.api else [])]:
            if proc.alive():
                self.stop_gracefully(proc)
        self.sandbox.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def logs_tail(self) -> str:
        procs = [*(self.api and [self.api] or []), *self.workers, *self.dead[-3:]]
        return "\n".join(p.tail() for p in procs)

    # -- clients -------------------------------------------------------------------------------------
    def token(self, user_id: str) -> str:
        settings = Settings(TALLY_JWT_SECRET=self.jwt_secret)  # type: ignore[call-arg]
        return issue_dev_token(settings, user_id, f"{user_id}@example.com")

    def client(self, user_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token(user_id)}"},
                            timeout=60)

    def stripe(self) -> stripe.StripeClient:
        return stripe.StripeClient("sk_test_faults", base_addresses={"api": self.sandbox.url},
                                   max_network_retries=0)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, self.sandbox.url + path, json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def ledger_check(self) -> subprocess.CompletedProcess[str]:
        """The real command, as an operator runs it."""
        return subprocess.run([str(BIN / "tally"), "ledger", "check"], env=self.env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=120)


# -- load -------------------------------------------------------------------------------------------------
PACKS = {"starter": 500, "plus": 1100, "pro": 3000}  # coins + bonus of the default catalog


@dataclass(frozen=True)
class Purchase:
    user: str
    order_id: str
    session_id: str
    pack: str


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def pay(cluster: Cluster, session_id: str) -> None:
    """Submit the sandbox's hosted Checkout form, as a browser does."""
    with httpx.Client(base_url=cluster.sandbox.url, timeout=60) as page:
        answer = page.post(f"/c/pay/{session_id}", data={
            "email": "buyer@example.com", "cardNumber": VISA, "cardExpiry": "12 / 34", "cardCvc": "123",
            "billingName": "Ada Lovelace", "country": "US"})
    assert answer.status_code == 303, answer.text


def buy(cluster: Cluster, n: int, *, users: int | None = None, threads: int = 6) -> list[Purchase]:
    """``n`` packs bought through the API and paid on the sandbox's page, spread over ``users`` users."""
    people = [new_user() for _ in range(users or max(1, n // 2))]
    packs = list(PACKS)

    def one(i: int) -> Purchase:
        user, pack = people[i % len(people)], packs[i % len(packs)]
        with cluster.client(user) as client:
            answer = client.post("/v1/checkout", json={"pack_id": pack})
        assert answer.status_code == 200, answer.text
        started = answer.json()
        pay(cluster, started["session_id"])
        return Purchase(user, started["order_id"], started["session_id"], pack)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def stripe_events(cluster: Cluster) -> list[dict[str, Any]]:
    return [e.to_dict() for e in cluster.stripe().v1.events.list(params={"limit": 100}).auto_paging_iter()]


def with_duplicates(events: list[dict[str, Any]], share: float = 0.2) -> list[dict[str, Any]]:
    """The events plus ``share`` of them again, all shuffled (some duplicates land back to back)."""
    deliveries = events + random.choices(events, k=int(len(events) * share))
    random.shuffle(deliveries)
    return deliveries


# -- chaos ------------------------------------------------------------------------------------------------
class Chaos(threading.Thread):
    """Every few hundred milliseconds, SIGKILL a random worker and start a new one in its place.

    Only a worker that has been working for ``min_work`` seconds is a candidate: a ``tally worker`` takes
    seconds to start on a loaded 2-core machine, and killing workers before they start tests nothing. With
    three or four workers that still leaves a kill every few hundred milliseconds (``rate`` says how many)."""

    def __init__(self, cluster: Cluster, every: tuple[float, float], concurrency: int,
                 min_work: float = 1.0) -> None:
        super().__init__(name="chaos", daemon=True)
        self.cluster, self.every, self.concurrency, self.min_work = cluster, every, concurrency, min_work
        self.kills = 0
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self.started = self.stopped = 0.0

    @property
    def rate(self) -> float:
        """Kills per second while the chaos ran."""
        return self.kills / max(1e-9, (self.stopped or time.monotonic()) - self.started)

    def run(self) -> None:
        self.started = time.monotonic()
        try:
            while not self._halt.wait(random.uniform(*self.every)):
                candidates = [w for w in list(self.cluster.workers) if w.working_for() >= self.min_work]
                if not candidates:
                    continue
                self.cluster.kill(random.choice(candidates))
                self.kills += 1
                self.cluster.start_worker(self.concurrency)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def stop(self) -> int:
        self._halt.set()
        self.join(timeout=60)
        self.stopped = time.monotonic()
        if self.error is not None:
            raise self.error
        return self.kills


@contextmanager
def chaos(cluster: Cluster, scale: Scale) -> Iterator[Chaos]:
    monkey = Chaos(cluster, scale.kill_every, scale.worker_concurrency)
    monkey.start()
    try:
        yield monkey
    finally:
        monkey.stop()


# -- outcome ----------------------------------------------------------------------------------------------
def unsettled_events(url: str) -> int:
    return int(sql(url, "SELECT count(*) FROM webhook_events WHERE status NOT IN ('processed', 'ignored')")[0][0])


def wait_settled(cluster: Cluster, timeout: float) -> None:
    """Every stored event processed (or ignored): none pending, none failed for good."""
    def settled() -> bool:
        failed = sql(cluster.database_url, "SELECT id, last_error FROM webhook_events WHERE status = 'failed'")
        assert not failed, f"events failed for good: {failed[:5]}\n{cluster.logs_tail()}"
        return unsettled_events(cluster.database_url) == 0

    try:
        wait_until(settled, timeout, "every event processed", every=0.5)
    except AssertionError as exc:
        stuck = sql(cluster.database_url, "SELECT id, type, status, attempts, last_error FROM webhook_events "
                                          "WHERE status NOT IN ('processed', 'ignored') LIMIT 5")
        jobs = sql(cluster.database_url, "SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")
        raise AssertionError(f"{exc}\nstuck: {stuck}\njobs: {jobs}\n{cluster.logs_tail()}") from None


def assert_credited_once(cluster: Cluster, purchases: list[Purchase]) -> None:
    """Every paid order credited exactly once, with its invoice, and each user's balance their packs' coins."""
    url = cluster.database_url
    per_order = dict(sql(url, "SELECT order_id, count(*) FROM ledger_transactions WHERE kind = 'purchase' "
                              "GROUP BY order_id"))
    assert per_order == {p.order_id: 1 for p in purchases}
    statuses = dict(sql(url, "SELECT id, status FROM orders"))
    assert {statuses[p.order_id] for p in purchases} == {"paid"}
    invoices = dict(sql(url, "SELECT order_id, count(*) FROM invoices GROUP BY order_id"))
    assert invoices == {p.order_id: 1 for p in purchases}
    expected: dict[str, int] = {}
    for p in purchases:
        expected[p.user] = expected.get(p.user, 0) + PACKS[p.pack]
    balances = dict(sql(url, "SELECT user_id, balance FROM wallet_balances"))
    assert {u: balances.get(u) for u in expected} == expected


def assert_probes_once(url: str, event_ids: set[str]) -> None:
    per_event = dict(sql(url, "SELECT event_id, count(*) FROM probe_credits GROUP BY event_id"))
    assert set(per_event) == event_ids
    assert {n for n in per_event.values()} == {1}, {e: n for e, n in per_event.items() if n != 1}


def assert_ledger_check_passes(cluster: Cluster) -> None:
    done = cluster.ledger_check()
    assert done.returncode == 0 and done.stdout.startswith("ledger check: OK"), done.stdout + done.stderr


def deliver_until_acknowledged(cluster: Cluster, events: list[dict[str, Any]], *, rounds: int = 60) -> int:
    """POST each event (signed) until Tally answers 200, as Stripe keeps retrying a failed delivery; a dropped
    connection counts as a failure. The number of failed attempts."""
    import asyncio

    from tests.webhook_signing import signed

    async def run() -> int:
        pending, failures = list(events), 0
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as client:
            async def one(event: dict[str, Any]) -> bool:
                body, headers = signed(event, cluster.secret)
                try:
                    answer = await client.post(cluster.url + WEBHOOK_PATH, content=body, headers=headers)
                except httpx.HTTPError:
                    return False
                return answer.status_code == 200

            for _ in range(rounds):  # noqa: B007 - the round paces the backoff
                results = []
                for i in range(0, len(pending), 16):
                    results += await asyncio.gather(*(one(e) for e in pending[i:i + 16]))
                failed = [e for e, ok in zip(pending, results, strict=True) if not ok]
                failures += len(failed)
                if not failed:
                    return failures
                pending = failed
                await asyncio.sleep(min(2.0, 0.2 * 2 ** (_ // 4)))  # backing off, as Stripe does
        raise AssertionError(f"{len(pending)} deliveries never acknowledged")

    return asyncio.run(run())
