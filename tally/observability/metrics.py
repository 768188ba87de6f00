"""Prometheus metrics, in two halves.

- In this process (``HttpMetrics``): requests by route template, method and status, and their latency.
  Under several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory shared by the workers,
  before they start) and every worker's counts are summed at scrape time.
- From the database at scrape time (``database_families``): anything that spans processes — the API receives
  webhooks, workers process them — is read from the tables that already record it, so every process and every
  restart agree: webhook events by type and status (the inbox), the oldest pending event's age, payment
  attempts by method and decline code (the inbox's ``charge.succeeded`` and ``payment_intent.payment_failed``
  events), credits granted, spent, expired and taken back (the ledger's counters, ``tally.ledger.service.totals``),
  and the job queue (``procrastinate_jobs``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ..ledger.service import totals as ledger_totals

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # a path no route matched: one label value, whatever was asked (no label explosion)


class HttpMetrics:
    """Per app (tests build several apps in one process, and a second registration would clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("tally_http_requests", "HTTP requests by route template, method and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("tally_http_request_duration_seconds", "Time to the end of the response",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Snapshot(Collector):
    """A collector that yields families already read (the database is read asynchronously before rendering)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render(families: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


# -- read from the database at scrape time ------------------------------------------------------------
WEBHOOKS_SQL = text("SELECT type, status, count(*) FROM webhook_events GROUP BY type, status")
OLDEST_PENDING_SQL = text("""
    SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(received_at)), 0) FROM webhook_events WHERE status = 'pending'""")
# One row per payment attempt Stripe reported: a success is its charge.succeeded (the charge names the method
# used); a failure is its payment_intent.payment_failed (declines, and authentications that failed before any
# charge), whose last_payment_error names the method and the decline code.
PAYMENTS_SQL = text("""
    SELECT 'succeeded' AS outcome,
           COALESCE(payload #>> '{data,object,payment_method_details,type}', 'unknown') AS method,
           '' AS decline_code,
           lower(COALESCE(payload #>> '{data,object,currency}', '')) AS currency,
           count(*) AS n
      FROM webhook_events WHERE type = 'charge.succeeded'
     GROUP BY 2, 3, 4
    UNION ALL
    SELECT 'failed',
           COALESCE(payload #>> '{data,object,last_payment_error,payment_method,type}', 'unknown'),
           COALESCE(payload #>> '{data,object,last_payment_error,decline_code}',
                    payload #>> '{data,object,last_payment_error,code}', 'unknown'),
           lower(COALESCE(payload #>> '{data,object,currency}', '')),
           count(*)
      FROM webhook_events WHERE type = 'payment_intent.payment_failed'
     GROUP BY 2, 3, 4""")
# Wallet-side entries: positive kinds are grants (coins, bonus, subscription), ``spend`` and ``clawback`` are
# negative. Summed from the wallets' side so that a grant and its system counterpart count once.
JOBS_SQL = text("""
    SELECT queue_name, task_name, status::text, count(*) FROM procrastinate_jobs
     WHERE status IN ('todo', 'doing') GROUP BY 1, 2, 3""")


async def database_families(session: AsyncSession) -> list[Metric]:
    received = CounterMetricFamily("tally_webhook_events_received", "Webhook events stored in the inbox, by type",
                                   labels=["type"])
    by_status = GaugeMetricFamily("tally_webhook_events", "Webhook events by type and current status "
                                  "(pending, processed, ignored, failed)", labels=["type", "status"])
    totals: dict[str, int] = {}
    for event_type, status, n in (await session.execute(WEBHOOKS_SQL)).all():
        by_status.add_metric([event_type, status], n)
        totals[event_type] = totals.get(event_type, 0) + n
    for event_type, n in sorted(totals.items()):
        received.add_metric([event_type], n)

    lag = GaugeMetricFamily("tally_webhook_oldest_pending_age_seconds",
                            "Age of the oldest webhook event not processed yet (0 when none waits)")
    lag.add_metric([], float((await session.execute(OLDEST_PENDING_SQL)).scalar_one()))

    payments = CounterMetricFamily("tally_payments", "Payment attempts reported by Stripe, by outcome, method, "
                                   "decline code and currency", labels=["outcome", "method", "decline_code",
                                                                        "currency"])
    for outcome, method, code, currency, n in (await session.execute(PAYMENTS_SQL)).all():
        payments.add_metric([outcome, method, code, currency], n)

    # From the ledger's counters (kept in each movement's transaction), never a sum over the ledger itself.
    moved = await ledger_totals(session)
    granted = CounterMetricFamily("tally_credits_granted", "Credits granted to wallets, by category (paid, "
                                  "promotional)", labels=["category"])
    spent = CounterMetricFamily("tally_credits_spent", "Credits spent from wallets (spends and captured holds)")
    expired = CounterMetricFamily("tally_credits_expired", "Credits that lapsed at their grant's expiry, by category",
                                  labels=["category"])
    clawed = CounterMetricFamily("tally_credits_clawed_back", "Credits taken back by refunds, disputes and "
                                 "adjustments down")
    for category in ("paid", "promotional"):
        granted.add_metric([category], moved.get((category, "granted"), 0))
        expired.add_metric([category], moved.get((category, "expired"), 0))
    spent.add_metric([], sum(amount for (_, movement), amount in moved.items() if movement == "used"))
    clawed.add_metric([], sum(amount for (_, movement), amount in moved.items() if movement == "reversed"))

    jobs = GaugeMetricFamily("tally_jobs", "Background jobs waiting (todo) or running (doing)",
                             labels=["queue", "task", "status"])
    depth = GaugeMetricFamily("tally_worker_queue_depth", "Background jobs waiting to run, all queues")
    waiting = 0
    for queue, task, status, n in (await session.execute(JOBS_SQL)).all():
        jobs.add_metric([queue, task, status], n)
        waiting += n if status == "todo" else 0
    depth.add_metric([], waiting)
    return [received, by_status, lag, payments, granted, spent, expired, clawed, jobs, depth]

