"""``InboxReceiver`` on a real PostgreSQL, without HTTP: many deliveries at once share INSERTs (group commit),
each is answered once its row is committed, a duplicate is told it is one, none is left waiting, and no two
INSERTs deadlock on the ids they share (a group redone one by one shows in the count of stored events)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import psycopg

from tally.db import Database, libpq_url
from tally.webhooks import service
from tally.webhooks.inbox import InboxReceiver
from tally.webhooks.signature import parse_event
from tests.webhook_signing import make_event

EVENT_TYPE = "tally.test.inbox_receiver"


def verified(event: dict[str, Any]) -> Any:
    return parse_event(orjson.dumps(event).decode(), live_mode=False)


def stored_ids(database_url: str, ids: list[str]) -> list[str]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute("SELECT id FROM webhook_events WHERE id = ANY(%s)", (ids,))
        return [r[0] for r in rows]


def test_a_thousand_concurrent_deliveries_with_duplicates(database_url: str, monkeypatch: Any) -> None:
    groups: list[int] = []
    real = service.store_events

    async def counted(conn: Any, events: list[Any]) -> set[str]:
        ours = sum(1 for e in events if e.type == EVENT_TYPE)  # not the session's other Tally servers' events
        if ours:
            groups.append(ours)
        return await real(conn, events)

    monkeypatch.setattr(service, "store_events", counted)
    events = [make_event(EVENT_TYPE) for _ in range(600)]
    deliveries = [verified(e) for e in events] + [verified(e) for e in random.sample(events, 400)]
    random.shuffle(deliveries)

    async def run() -> list[bool]:
        db = Database(database_url)
        receiver = InboxReceiver(db)
        await receiver.open()
        try:
            first = await asyncio.wait_for(asyncio.gather(*(receiver.store(d) for d in deliveries)), 60)
            # Stored already: every delivery again is a duplicate, answered as one.
            again = await asyncio.wait_for(asyncio.gather(*(receiver.store(d) for d in deliveries[:50])), 60)
            assert again == [False] * 50
            return first
        finally:
            await receiver.close()
            await db.dispose()

    answers = asyncio.run(run())
    new = [d.id for d, is_new in zip(deliveries, answers, strict=True) if is_new]
    assert sorted(new) == sorted(e["id"] for e in events)  # each event new exactly once
    assert max(groups) > 1 and max(groups) <= InboxReceiver.MAX_GROUP, groups
    assert sum(groups) == len(deliveries) + 50  # no group failed and was stored again one by one
    assert sorted(stored_ids(database_url, [e["id"] for e in events])) == sorted(e["id"] for e in events)
