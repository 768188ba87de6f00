"""The webhook receiver's process dies after storing an event and before answering (see crashing_receiver.py):
Stripe saw no answer and retries; the restarted receiver finds the event already stored and answers 200 without
storing it again; the worker credits the order once. Repeated for several purchases, one crash each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.crashing_receiver import EXIT_CODE
from tests.faults.harness import (Cluster, Purchase, Scale, assert_credited_once, assert_ledger_check_passes, pay,
                                  new_user, sql, wait_settled, wait_until)
from tests.tally_harness import fresh_database

DIE_ON = "checkout.session.completed"


@pytest.mark.timeout(600)
def test_receiver_dying_before_its_answer_still_credits_once(scale: Scale, tmp_path: Path) -> None:
    markers = tmp_path / "died-on"
    command = [sys.executable, "-m", "tests.faults.crashing_receiver", "--die-on", DIE_ON, "--markers", str(markers)]
    crashes = 3 if scale.orders < 50 else 12
    with fresh_database() as url, Cluster(url, api_command=command, retry_delays=(1, 2, 4, 8, 16, 32)) as cluster:
        cluster.start_api()
        cluster.start_worker()
        purchases: list[Purchase] = []
        seen: set[str] = set()
        for _ in range(crashes):
            user = new_user()
            with cluster.client(user) as client:
                started = client.post("/v1/checkout", json={"pack_id": "plus"}).json()
            pay(cluster, started["session_id"])
            api = cluster.api
            assert api is not None
            assert api.popen.wait(timeout=60) == EXIT_CODE, api.tail()
            died_on = {p.name for p in markers.iterdir()} - seen
            assert len(died_on) == 1
            event_id = died_on.pop()
            seen.add(event_id)
            # Stored before the crash; Stripe got no answer.
            assert sql(url, "SELECT type FROM webhook_events WHERE id = %s", event_id) == [(DIE_ON,)]
            first = wait_until(lambda: deliveries(cluster, event_id), 30, "the failed delivery recorded")
            assert first[0]["status_code"] is None and first[0]["error"], first

            cluster.start_api()  # the supervisor restarts it; Stripe's retry comes in
            wait_until(lambda: any(d["status_code"] == 200 for d in deliveries(cluster, event_id)), 60,
                       "Stripe's retry answered 200")
            purchases.append(Purchase(user, started["order_id"], started["session_id"], "plus"))
            wait_until(lambda: sql(url, "SELECT status FROM orders WHERE id = %s", started["order_id"]) == [("paid",)],
                       60, "the order credited")
            assert sql(url, "SELECT count(*) FROM webhook_events WHERE id = %s", event_id) == [(1,)]

        wait_settled(cluster, timeout=60)
        assert_credited_once(cluster, purchases)
        assert len(list(markers.iterdir())) == crashes
        assert_ledger_check_passes(cluster)


def deliveries(cluster: Cluster, event_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(cluster.sandbox.url + "/_sandbox/deliveries", params={"event": event_id}, timeout=30)
    return answer.json()["data"]
