"""Webhook processing by real ``tally worker`` processes: several workers never process one event twice;
a failing handler is retried with backoff, then marked failed, listed, and replayed."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tally.db import Database
from tally.stripe_gateway import SANDBOX_KEY
from tally.webhooks import service
from tally.webhooks.dispatch import HandlerContext, handles
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, checkout, new_user, pay, sdk
from tests.integration.webhook_probe_handlers import CREATE, PROBE_TYPE
from tests.tally_harness import TallyServer, fresh_database
from tests.waiting import poll, sql_at
from tests.webhook_signing import deliver, make_event

ROOT = Path(__file__).resolve().parents[2]
TALLY = ROOT / ".venv" / "bin" / "tally"
PATH = "/v1/webhooks/stripe"


sql = sql_at


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    poll(predicate, timeout=timeout, what=what, every=0.1)


def start_worker(database_url: str, sandbox_url: str, *, concurrency: int = 8,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TALLY_DATABASE_URL": database_url, "STRIPE_SECRET_KEY": "sk_test_x",
           "STRIPE_API_BASE": sandbox_url, "STRIPE_WEBHOOK_SECRET": "whsec_unused_by_workers",
           "TALLY_DATA_DIR": tempfile.mkdtemp(prefix="tally-worker-"), "TALLY_LOG_FORMAT": "json",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(extra_env or {})}
    return subprocess.Popen([str(TALLY), "worker", "--concurrency", str(concurrency)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


@pytest.fixture()
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_two_worker_processes_process_each_of_500_shuffled_duplicated_events_once(database_url: str) -> None:
    sql(database_url, CREATE)
    events = [make_event(PROBE_TYPE) for _ in range(500)]
    # 20 % duplicates, some delivered back to back (racing in the receiver), all shuffled.
    deliveries = events + random.sample(events, 100)
    random.shuffle(deliveries)
    with TallyServer(database_url, run_worker=False) as tally:
        env = {"TALLY_HANDLER_MODULES": "tests.integration.webhook_probe_handlers"}
        workers = [start_worker(database_url, tally.sandbox.url, extra_env=env) for _ in range(2)]
        try:
            # Both running before the first delivery: receipt is fast enough for one worker to take it all.
            wait_until(lambda: sql(database_url, "SELECT count(*) FROM procrastinate_workers") >= [(2,)], 60,
                       "two registered workers")
            statuses = asyncio.run(deliver(tally.url + PATH, deliveries, tally.webhook_secret, concurrency=16))
            assert set(statuses) == {200}
            wait_until(lambda: sql(database_url, "SELECT count(*) FROM webhook_events WHERE status = 'processed' "
                                                 "AND type = %s", PROBE_TYPE) == [(500,)], 90, "500 processed events")
        finally:
            logs = [stop(w) for w in workers]
    assert all(w.returncode is not None for w in workers), logs
    # (the sandbox also sends Tally its own events, e.g. from the catalog sync at start-up)
    assert sql(database_url, "SELECT count(*) FROM webhook_events WHERE type = %s", PROBE_TYPE) == [(500,)]
    per_event = sql(database_url, "SELECT event_id, count(*) FROM probe_credits GROUP BY event_id")
    assert len(per_event) == 500 and {n for _, n in per_event} == {1}
    assert {e for e, _ in per_event} == {e["id"] for e in events}
    assert sql(database_url, "SELECT count(*) FROM webhook_events WHERE attempts <> 1 AND type = %s",
               PROBE_TYPE) == [(0,)]
    pids = sql(database_url, "SELECT pid, count(*) FROM probe_credits GROUP BY pid")
    assert len(pids) == 2, f"both workers should have taken work: {pids}\n{logs}"


@pytest.mark.timeout(400)
@pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)
def test_two_worker_processes_credit_each_real_payment_once(database_url: str) -> None:
    """Real payments: orders made through the API and paid on the sandbox's Checkout page with webhook
    delivery paused; then every event Stripe raised (session completed, payment intent succeeded, charge
    succeeded, customer created...) delivered shuffled, with duplicates, to two worker processes."""
    with TallyServer(database_url, run_worker=False) as tally:
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
        users = [new_user() for _ in range(100)]
        packs = ["starter", "plus", "pro"]

        def buy(i: int) -> tuple[str, str, str]:
            with tally.client(users[i]) as client:
                started = checkout(client, packs[i % len(packs)])
            assert pay(tally, started["session_id"]).status_code == 303
            return users[i], started["order_id"], packs[i % len(packs)]

        with ThreadPoolExecutor(8) as pool:
            orders = list(pool.map(buy, range(len(users))))
        events = [e.to_dict() for e in sdk(tally).v1.events.list(params={"limit": 100}).auto_paging_iter()]
        assert sum(e["type"] == "checkout.session.completed" for e in events) == len(orders)
        deliveries = events + random.choices(events, k=max(len(events) // 5, 500 - len(events)))
        random.shuffle(deliveries)
        assert len(deliveries) >= 500

        workers = [start_worker(database_url, tally.sandbox.url, concurrency=8,
                                extra_env={"STRIPE_SECRET_KEY": SANDBOX_KEY}) for _ in range(2)]
        try:
            statuses = asyncio.run(deliver(tally.url + PATH, deliveries, tally.webhook_secret, concurrency=16))
            assert set(statuses) == {200}
            wait_until(lambda: sql(database_url, "SELECT count(*) FROM webhook_events WHERE status IN "
                                                 "('pending', 'failed')") == [(0,)], 240, "every event handled")
        finally:
            logs = [stop(w) for w in workers]
        assert sql(database_url, "SELECT count(*) FROM webhook_events") == [(len(events),)], logs

        coins = {p["id"]: p["coins"] + p["bonus"] for p in tally.client().get("/v1/catalog").json()["packs"]}
        per_order = dict(sql(database_url, "SELECT order_id, count(*) FROM ledger_transactions "
                                           "WHERE kind = 'purchase' GROUP BY order_id"))
        assert per_order == {order_id: 1 for _, order_id, _ in orders}
        paid = sql(database_url, "SELECT count(*) FROM orders WHERE status = 'paid'")
        assert paid == [(len(orders),)]
        assert sql(database_url, "SELECT count(*) FROM invoices") == [(len(orders),)]
        balances = dict(sql(database_url, "SELECT user_id, balance FROM wallet_balances"))
        assert balances == {user: coins[pack] for user, _, pack in orders}


FAIL = {"on": True}


@handles("tally.test.flaky")
async def _flaky(ctx: HandlerContext, event: dict[str, Any]) -> None:
    if FAIL["on"]:
        raise RuntimeError("ledger not ready for " + event["data"]["object"]["id"])


def test_failing_handler_is_retried_then_failed_listed_and_replayed(database_url: str) -> None:
    FAIL["on"] = True
    with TallyServer(database_url, TALLY_WEBHOOK_MAX_ATTEMPTS="3") as tally:
        first, second = make_event("tally.test.flaky"), make_event("tally.test.flaky")
        assert set(asyncio.run(deliver(tally.url + PATH, [first, second], tally.webhook_secret))) == {200}

        def state(event_id: str) -> tuple[Any, ...]:
            return sql(database_url, "SELECT status, attempts, last_error FROM webhook_events WHERE id = %s",
                       event_id)[0]

        # Backoff 2 s then 4 s: three tries in about 6 s, then failed with the error kept.
        wait_until(lambda: state(first["id"])[0] == "failed" and state(second["id"])[0] == "failed", 30,
                   "the failed status")
        status, attempts, error = state(first["id"])
        assert attempts == 3 and "RuntimeError: ledger not ready" in error

        with tally.admin_client() as admin:
            listed = admin.get("/v1/admin/events", params={"status": "failed"}).json()
            assert {e["id"] for e in listed["data"]} == {first["id"], second["id"]}
            page = admin.get("/v1/admin/events", params={"status": "failed", "limit": 1}).json()
            assert page["has_more"] and len(page["data"]) == 1
            rest = admin.get("/v1/admin/events", params={"status": "failed", "limit": 1,
                                                         "cursor": page["next_cursor"]}).json()
            assert not rest["has_more"]
            assert {page["data"][0]["id"], rest["data"][0]["id"]} == {first["id"], second["id"]}
            with tally.client("someone") as user:
                assert user.get("/v1/admin/events").status_code == 403
            assert admin.post("/v1/admin/events/evt_unknown/replay").status_code == 404

            FAIL["on"] = False  # the cause is fixed; the operator replays
            replayed = admin.post(f"/v1/admin/events/{first['id']}/replay")
            assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
            wait_until(lambda: state(first["id"])[0] == "processed", 15, "the replayed event")

        # The same through the command line, from another process.
        env = {**os.environ, "TALLY_DATABASE_URL": database_url, "STRIPE_SECRET_KEY": "sk_test_x",
               "STRIPE_API_BASE": tally.sandbox.url, "STRIPE_WEBHOOK_SECRET": "whsec_x",
               "TALLY_DATA_DIR": tempfile.mkdtemp(prefix="tally-cli-")}
        done = subprocess.run([str(TALLY), "events", "replay", second["id"]], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_until(lambda: state(second["id"])[0] == "processed", 15, "the event replayed by the CLI")
        missing = subprocess.run([str(TALLY), "events", "replay", "evt_nope"], env=env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and "No such event" in missing.stderr


def test_retries_and_left_behind_events_are_claimed_when_due(database_url: str) -> None:
    """One queue: the claim takes any pending event whose backoff has passed (a retry, or one whose worker died
    mid-try), oldest first, like a new one; an event still waiting out its backoff is left alone."""
    due, waiting, new = (make_event("tally.test.lost") for _ in range(3))
    for event, attempts, next_attempt in ((due, 2, "now() - interval '1 second'"),
                                          (waiting, 1, "now() + interval '1 hour'"), (new, 0, "NULL")):
        sql(database_url, f"""INSERT INTO webhook_events (id, type, livemode, stripe_created, payload, attempts,
                                                         next_attempt_at)
                              VALUES (%s, %s, false, 0, '{{}}', %s, {next_attempt})""",
            event["id"], event["type"], attempts)

    async def claim() -> int:
        db = Database(database_url, pool_size=1)
        try:
            return await service.process_due_events(db, SimpleNamespace(stripe=None, settings=None), limit=10)
        finally:
            await db.dispose()

    assert asyncio.run(claim()) == 2
    statuses = dict(sql(database_url, "SELECT id, status FROM webhook_events WHERE id IN (%s, %s, %s)",
                        due["id"], waiting["id"], new["id"]))
    assert statuses == {due["id"]: "ignored", waiting["id"]: "pending", new["id"]: "ignored"}
