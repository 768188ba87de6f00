"""Workers SIGKILLed at random under load: real purchases' Stripe events and probe events, 20 % duplicated and
shuffled, delivered to ``tally serve`` while a chaos loop kills a random ``tally worker`` every few hundred
milliseconds and starts another. Afterwards every paid order is credited exactly once, every event processed
exactly once, and ``tally ledger check`` passes."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import (Cluster, Scale, assert_credited_once, assert_ledger_check_passes,
                                  assert_probes_once, buy, chaos, sql, stripe_events, unsettled_events,
                                  wait_settled, wait_until, with_duplicates)
from tests.integration.webhook_probe_handlers import PROBE_TYPE
from tests.tally_harness import fresh_database
from tests.webhook_signing import deliver, make_event


@pytest.mark.timeout(900)
def test_workers_killed_at_random_credit_every_paid_order_exactly_once(scale: Scale) -> None:
    with fresh_database() as url, Cluster(url) as cluster:
        cluster.start_api()
        cluster.control("POST", "/_sandbox/webhooks/pause")  # the test delivers, shuffled and duplicated
        purchases = buy(cluster, scale.orders)
        probes = [make_event(PROBE_TYPE) for _ in range(scale.probe_events)]
        events = stripe_events(cluster) + probes
        deliveries = with_duplicates(events)

        for _ in range(scale.workers):
            cluster.start_worker(scale.worker_concurrency)
        with chaos(cluster, scale) as monkey:
            statuses = asyncio.run(deliver(cluster.url + "/v1/webhooks/stripe", deliveries, cluster.secret))
            assert set(statuses) == {200}
            # Keep killing while the backlog is worked through, for at least a few dozen kills.
            wait_until(lambda: unsettled_events(url) < len(events) // 4 and monkey.kills >= scale.min_kills, 300,
                       "the backlog mostly processed under chaos", every=0.5)
        kills, rate = monkey.kills, monkey.rate
        started = time.monotonic()
        wait_settled(cluster, timeout=240)
        recovery = time.monotonic() - started

        assert sql(url, "SELECT count(*) FROM webhook_events") == [(len(events),)]
        assert_credited_once(cluster, purchases)
        assert_probes_once(url, {e["id"] for e in probes})
        assert_ledger_check_passes(cluster)
        print(f"\n{len(deliveries)} deliveries of {len(events)} events, {scale.workers} workers, {kills} SIGKILLs "
              f"({rate:.1f}/s), settled {recovery:.1f} s after the chaos stopped")
