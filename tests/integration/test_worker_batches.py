"""The inbox worker's batches (``tally.webhooks.service.process_due_events``) against a real Postgres, in
process: events share a transaction until one of them takes the invoice counter, which every fulfilment
queues behind; that event's transaction commits at once. Two concurrent batches that lock the same rows in
opposite orders therefore never deadlock through the counter."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from tally.db import Database
from tally.invoices.service import next_invoice_number
from tally.webhooks import service
from tally.webhooks.dispatch import HandlerContext, handles
from tests.tally_harness import fresh_database
from tests.waiting import sql_at
from tests.webhook_signing import make_event

YEAR = 2099
PROBE = """
CREATE TABLE probe_wallets (id int PRIMARY KEY, touched int NOT NULL DEFAULT 0);
INSERT INTO probe_wallets (id) SELECT generate_series(1, 5);
CREATE TABLE probe_batches (event_id text PRIMARY KEY, txid bigint NOT NULL)"""

# Rendezvous between the two batches of the deadlock test, by name (the events' payloads say which).
SIGNALS: dict[str, asyncio.Event] = {}
# Handler runs per event, rolled-back ones included: a batch failed and redone event by event shows here.
RUNS: Counter[str] = Counter()


async def _touch(ctx: HandlerContext, event: dict[str, Any]) -> None:
    """Lock the event's wallet row (as a ledger movement does) and record the transaction it ran in."""
    RUNS[ctx.event_id] += 1
    obj = event["data"]["object"]
    await ctx.session.execute(text("UPDATE probe_wallets SET touched = touched + 1 WHERE id = :id"),
                              {"id": obj["wallet"]})
    await ctx.session.execute(text("INSERT INTO probe_batches VALUES (:e, txid_current())"), {"e": ctx.event_id})
    if "signal" in obj:
        SIGNALS[obj["signal"]].set()


@handles("tally.test.wallet")
async def _wallet_movement(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await _touch(ctx, event)


@handles("tally.test.fulfilment")
async def _fulfilment(ctx: HandlerContext, event: dict[str, Any]) -> None:
    """A fulfilment's lock order: the wallet, then the invoice counter, last."""
    await _touch(ctx, event)
    await next_invoice_number(ctx.session, YEAR)
    if "took_counter" in event["data"]["object"]:
        SIGNALS[event["data"]["object"]["took_counter"]].set()
    if "wait_for" in event["data"]["object"]:
        await asyncio.wait_for(SIGNALS[event["data"]["object"]["wait_for"]].wait(), 10)


@pytest.fixture()
def database_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Batches here end by the counter rule alone, not by their time limit (the rendezvous takes a while).
    monkeypatch.setattr(service, "BATCH_SECONDS", 60)
    with fresh_database() as url:
        sql_at(url, PROBE)
        yield url


def store(database_url: str, *objects: dict[str, Any]) -> list[str]:
    """Inbox rows in this order of arrival (one millisecond apart): the claim takes the oldest first."""
    ids = []
    for i, obj in enumerate(objects):
        event = make_event(obj.pop("type"), obj={"object": "probe", **obj})
        sql_at(database_url, "INSERT INTO webhook_events (id, type, livemode, stripe_created, payload, received_at) "
                             "VALUES (%s, %s, false, 0, %s, now() + %s * interval '1 millisecond')",
               event["id"], event["type"], json.dumps(event), i)
        ids.append(event["id"])
    return ids


def transactions(database_url: str, ids: list[str]) -> list[list[str]]:
    """The events grouped by the transaction that processed them, in the order of ``ids``."""
    txid = dict(sql_at(database_url, "SELECT event_id, txid FROM probe_batches"))
    groups: dict[int, list[str]] = {}
    for event_id in ids:
        groups.setdefault(txid[event_id], []).append(event_id)
    return list(groups.values())


async def drain(database_url: str, *, limit: int) -> None:
    db = Database(database_url, pool_size=2)
    try:
        while await service.process_due_events(db, SimpleNamespace(stripe=None, settings=None), limit=limit):
            pass
    finally:
        await db.dispose()


def test_a_batch_commits_right_after_an_event_that_took_the_invoice_counter(database_url: str) -> None:
    ids = store(database_url, {"type": "tally.test.wallet", "wallet": 1}, {"type": "tally.test.wallet", "wallet": 2},
                {"type": "tally.test.fulfilment", "wallet": 3}, {"type": "tally.test.wallet", "wallet": 4},
                {"type": "tally.test.fulfilment", "wallet": 5}, {"type": "tally.test.wallet", "wallet": 1})
    asyncio.run(drain(database_url, limit=10))

    a, b, c, d, e, f = ids
    assert transactions(database_url, ids) == [[a, b, c], [d, e], [f]]
    assert sql_at(database_url, "SELECT status, count(*) FROM webhook_events GROUP BY status") == [("processed", 6)]
    assert sql_at(database_url, "SELECT last_number FROM invoice_counters WHERE year = %s", YEAR) == [(2,)]


def test_two_batches_locking_a_wallet_and_the_counter_in_opposite_orders_do_not_deadlock(database_url: str) -> None:
    """Batch one: a fulfilment (wallet 1, then the counter), then a movement on wallet 2. Batch two, claimed
    while the first fulfilment holds the counter: a movement on wallet 2, then a fulfilment (wallet 3, then
    the counter). Were batch one to go on to wallet 2 holding the counter, each would wait for the other:
    PostgreSQL would break the deadlock after a second by failing one batch, redone event by event."""
    RUNS.clear()
    ids = store(database_url,
                {"type": "tally.test.fulfilment", "wallet": 1, "took_counter": "counter taken by batch one",
                 "wait_for": "wallet 2 locked by batch two"},
                {"type": "tally.test.wallet", "wallet": 2},
                {"type": "tally.test.wallet", "wallet": 2, "signal": "wallet 2 locked by batch two"},
                {"type": "tally.test.fulfilment", "wallet": 3})

    async def two_batches() -> None:
        SIGNALS.clear()
        SIGNALS["wallet 2 locked by batch two"] = asyncio.Event()
        SIGNALS["counter taken by batch one"] = asyncio.Event()
        db = Database(database_url, pool_size=4)
        services = SimpleNamespace(stripe=None, settings=None)
        try:
            one = asyncio.create_task(service.process_due_events(db, services, limit=2))
            # Batch one holds the counter: now claim batch two.
            await asyncio.wait_for(SIGNALS["counter taken by batch one"].wait(), 20)
            two = asyncio.create_task(service.process_due_events(db, services, limit=2))
            assert await asyncio.wait_for(asyncio.gather(one, two), 20) == [2, 2]
        finally:
            await db.dispose()
        await drain(database_url, limit=2)  # batch one's second event, left for the next claim

    asyncio.run(two_batches())
    first, second, third, fourth = ids
    assert RUNS == {event_id: 1 for event_id in ids}  # no batch failed and was redone event by event
    assert transactions(database_url, ids) == [[first], [second], [third, fourth]]
    assert sql_at(database_url, "SELECT status, count(*) FROM webhook_events GROUP BY status") == [("processed", 4)]
    assert sql_at(database_url, "SELECT last_number FROM invoice_counters WHERE year = %s", YEAR) == [(2,)]
