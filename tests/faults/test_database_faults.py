"""PostgreSQL connections killed under load: every second or two, every backend of the test
database is ended with ``pg_terminate_backend`` (what a database restart or failover does to clients, without
disturbing the shared server's other databases) while purchases are made and paid, Stripe delivers their
webhooks and more events arrive. Requests caught by a kill may fail (the client or Stripe retries them); once the
kills stop, the very same API and worker processes serve again, with no restart, every event is processed, every
paid order credited once, and ``tally ledger check`` passes."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from tally.db import libpq_url
from tests.faults.harness import (Cluster, Purchase, Scale, assert_credited_once, assert_ledger_check_passes,
                                  assert_probes_once, deliver_until_acknowledged, new_user, pay, sql, wait_settled,
                                  wait_until)
from tests.integration.webhook_probe_handlers import PROBE_TYPE
from tests.tally_harness import fresh_database
from tests.webhook_signing import make_event


class Terminator(threading.Thread):
    """Ends every connection to the database, again and again, from an admin connection of its own."""

    def __init__(self, database_url: str, every: tuple[float, float]) -> None:
        super().__init__(name="terminator", daemon=True)
        self.url, self.every = database_url, every
        self.rounds = self.killed = 0
        self._halt = threading.Event()

    def run(self) -> None:
        database = self.url.rsplit("/", 1)[1].split("?")[0]
        admin = libpq_url(self.url).rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            while not self._halt.wait(random.uniform(*self.every)):
                ended = conn.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()
                self.rounds += 1
                self.killed += int(ended[0]) if ended else 0

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


def retrying(what: str, call: Any, attempts: int = 30) -> Any:
    """What a client does when a request fails for a moment: try again (a checkout is a new order each time)."""
    for _ in range(attempts):
        try:
            answer = call()
        except httpx.HTTPError:
            answer = None
        if answer is not None and answer.status_code < 500:
            return answer
        time.sleep(0.3)
    raise AssertionError(f"{what} kept failing: {answer and answer.text}")


@pytest.mark.timeout(600)
def test_connections_killed_under_load_and_the_same_processes_recover(scale: Scale) -> None:
    with fresh_database() as url, Cluster(url, api_worker=True) as cluster:
        cluster.start_api()
        workers = [cluster.start_worker(scale.worker_concurrency) for _ in range(2)]
        processes = [cluster.api, *workers]
        probes = [make_event(PROBE_TYPE) for _ in range(scale.probe_events)]
        purchases: list[Purchase] = []
        refused = 0
        terminator = Terminator(url, every=(1.0, 2.5))
        terminator.start()
        try:
            for i in range(scale.orders):
                user = new_user()
                with cluster.client(user) as client:
                    started = retrying("checkout", lambda: client.post("/v1/checkout", json={"pack_id": "pro"}))
                assert started.status_code == 200, started.text
                order = started.json()
                pay(cluster, order["session_id"])
                purchases.append(Purchase(user, order["order_id"], order["session_id"], "pro"))
                batch = probes[i * len(probes) // scale.orders:(i + 1) * len(probes) // scale.orders]
                refused += deliver_until_acknowledged(cluster, batch)
            wait_until(lambda: terminator.rounds >= 10, 60, "ten rounds of terminations")
        finally:
            terminator.stop()
        assert terminator.killed > terminator.rounds  # each round found connections to end
        print(f"\n{terminator.rounds} rounds, {terminator.killed} connections ended, {refused} deliveries refused")

        dead = [p.tail() for p in processes if p is None or not p.alive()]
        assert not dead, "a process exited instead of recovering:\n" + "\n".join(dead)
        wait_settled(cluster, timeout=180)
        assert_credited_once(cluster, purchases)
        assert_probes_once(url, {e["id"] for e in probes})
        # Still serving, same processes: a new purchase goes through end to end, and its first processing
        # attempts fail (Stripe refuses the session's re-fetch for a few seconds) so that a retry job has to run:
        # the job worker came back too, not only the inbox.
        user = new_user()
        with cluster.client(user) as client:
            started = client.post("/v1/checkout", json={"pack_id": "starter"})
        assert started.status_code == 200, started.text
        order = started.json()
        retried_before = sql(url, "SELECT count(*) FROM webhook_events WHERE attempts > 1")[0][0]
        cluster.control("POST", "/_sandbox/faults", {"status": 500, "seconds": 8, "path": "/v1/checkout/sessions/"})
        pay(cluster, order["session_id"])
        wait_until(lambda: sql(url, "SELECT status FROM orders WHERE id = %s", order["order_id"]) == [("paid",)],
                   60, "a purchase after the storm")
        wait_settled(cluster, timeout=60)
        assert sql(url, "SELECT count(*) FROM webhook_events WHERE attempts > 1")[0][0] > retried_before
        assert all(p is not None and p.alive() for p in processes)
        assert sql(url, "SELECT count(*) FROM orders WHERE status = 'paid'") == [(len(purchases) + 1,)]
        assert_ledger_check_passes(cluster)
