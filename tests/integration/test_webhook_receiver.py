"""The Stripe webhook receiver over real HTTP, on the embedded and on an external PostgreSQL: a verified
event is stored once and processed once; anything unverified is refused with 400 and leaves no row."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tally.db import libpq_url
from tally.webhooks import service
from tally.webhooks.dispatch import HANDLERS, HandlerContext, handles
from tests.tally_harness import TallyServer, external_postgres_reachable, fresh_database
from tests.waiting import poll, sql_at
from tests.webhook_signing import make_event, sign, signed

PATH = "/v1/webhooks/stripe"
CALLS: list[str] = []


@handles("tally.test.receiver_ok")
async def _record(ctx: HandlerContext, event: dict[str, Any]) -> None:
    CALLS.append(event["id"])


@pytest.fixture(scope="module", params=["embedded", "external"])
def server(request: pytest.FixtureRequest) -> Iterator[TallyServer]:
    if request.param == "external" and not external_postgres_reachable():
        pytest.skip("no external PostgreSQL (TALLY_DATABASE_URL's server, or 127.0.0.1:5432)")
    with fresh_database(request.param) as url, TallyServer(url) as tally:
        yield tally


def rows(server: TallyServer, event_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(server.database_url)) as conn:
        return conn.execute("SELECT status, attempts, type FROM webhook_events WHERE id = %s",
                            (event_id,)).fetchall()


def wait_status(server: TallyServer, event_id: str, status: str, timeout: float = 15) -> None:
    poll(lambda: (found := rows(server, event_id)) and found[0][0] == status, timeout=timeout, every=0.05,
         what=f"{event_id} to reach {status}")


def wait_nothing_new(server: TallyServer) -> None:
    """Every event stored so far has been taken and its batch committed: no event is new (pending, never tried;
    one in a batch being processed stays so until the batch commits). Whatever the workers would still do with
    a delivery made before this, they have done."""
    poll(lambda: sql_at(server.database_url, "SELECT count(*) FROM webhook_events "
                                             "WHERE status = 'pending' AND attempts = 0") == [(0,)],
         timeout=15, every=0.05, what="no new event left in the inbox")


def post(server: TallyServer, body: bytes, headers: dict[str, str]) -> Any:
    with server.client() as client:
        return client.post(PATH, content=body, headers=headers)


def test_valid_event_is_stored_and_processed_once(server: TallyServer) -> None:
    event = make_event("tally.test.receiver_ok")
    body, headers = signed(event, server.webhook_secret)
    answer = post(server, body, headers)
    assert answer.status_code == 200 and answer.json() == {"received": True}
    wait_status(server, event["id"], "processed")
    assert CALLS.count(event["id"]) == 1 and "tally.test.receiver_ok" in HANDLERS


def test_same_event_three_times_is_one_row_processed_once(server: TallyServer) -> None:
    event = make_event("tally.test.receiver_ok")
    for _ in range(3):  # Stripe signs each delivery afresh
        body, headers = signed(event, server.webhook_secret)
        assert post(server, body, headers).status_code == 200
    wait_status(server, event["id"], "processed")
    body, headers = signed(event, server.webhook_secret)
    assert post(server, body, headers).json() == {"received": True}  # after processing, still a 200
    wait_nothing_new(server)
    assert len(rows(server, event["id"])) == 1 and CALLS.count(event["id"]) == 1


def test_event_without_handler_is_acknowledged_and_ignored(server: TallyServer) -> None:
    event = make_event("customer.tax_id.created")
    assert post(server, *signed(event, server.webhook_secret)).status_code == 200
    wait_status(server, event["id"], "ignored")


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "no_header", "stale", "garbled_header",
                                  "empty_header"])
def test_unverified_event_is_refused_and_not_stored(server: TallyServer, case: str) -> None:
    event = make_event("tally.test.receiver_ok")
    body, headers = signed(event, server.webhook_secret)
    if case == "tampered":
        body = body.replace(b'"livemode":false', b'"livemode":false ')
    elif case == "wrong_secret":
        headers["Stripe-Signature"] = sign(body, "whsec_not_the_right_one")
    elif case == "no_header":
        del headers["Stripe-Signature"]
    elif case == "stale":
        headers["Stripe-Signature"] = sign(body, server.webhook_secret, timestamp=int(time.time()) - 600)
    elif case == "garbled_header":
        headers["Stripe-Signature"] = "nonsense"
    elif case == "empty_header":
        headers["Stripe-Signature"] = ""
    answer = post(server, body, headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_webhook"
    assert rows(server, event["id"]) == []  # refused before anything was stored: the answer is the fact


def test_two_signatures_during_rotation_are_accepted(server: TallyServer) -> None:
    # Stripe sends one v1 per active secret while the old one is still valid: any match passes.
    event = make_event("tally.test.receiver_ok")
    body = orjson.dumps(event)
    header = sign(body, "whsec_the_retired_secret", server.webhook_secret)
    assert post(server, body, {"Stripe-Signature": header}).status_code == 200
    wait_status(server, event["id"], "processed")


def test_each_configured_secret_is_tried(server: TallyServer) -> None:
    secrets = server.app.state.services.webhook_secrets
    secrets.append("whsec_second_endpoint_secret")
    try:
        event = make_event("tally.test.receiver_ok")
        assert post(server, *signed(event, "whsec_second_endpoint_secret")).status_code == 200
    finally:
        secrets.remove("whsec_second_endpoint_secret")
    wait_status(server, event["id"], "processed")


def test_no_configured_secret_refuses_everything(server: TallyServer) -> None:
    secrets = server.app.state.services.webhook_secrets
    saved = list(secrets)
    secrets[:] = [""]
    try:
        event = make_event("tally.test.receiver_ok")
        answer = post(server, *signed(event, ""))
        assert answer.status_code == 503 and answer.json()["error"]["type"] == "webhook_not_configured"
    finally:
        secrets[:] = saved
    assert rows(server, event["id"]) == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": "evt_x", "object": "charge"}',
                                  b'{"id": "evt_x", "object": "event", "type": "a.b"}', "\u00e9".encode("latin-1")])
def test_signed_body_that_is_not_an_event_is_refused(server: TallyServer, body: bytes) -> None:
    answer = post(server, body, {"Stripe-Signature": sign(body, server.webhook_secret)})
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_webhook"
    assert rows(server, "evt_x") == []


def test_live_event_on_a_test_key_is_refused(server: TallyServer) -> None:
    event = make_event("tally.test.receiver_ok", livemode=True)
    answer = post(server, *signed(event, server.webhook_secret))
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "livemode"
    assert rows(server, event["id"]) == []


def test_every_pending_event_is_due_or_waiting_out_its_backoff(server: TallyServer) -> None:
    """Nothing waits forever: a pending event is new or replayed (no ``next_attempt_at``: due now) or a failed
    try waiting for its next one, due within the longest backoff; the inbox workers claim both."""
    with psycopg.connect(libpq_url(server.database_url)) as conn:
        stray = conn.execute("""
            SELECT count(*) FROM webhook_events WHERE status = 'pending'
              AND (next_attempt_at > now() + interval '1 hour' OR (attempts = 0 AND next_attempt_at IS NOT NULL))
            """).fetchone()
        processed = conn.execute("SELECT count(*) FROM webhook_events WHERE status <> 'pending'").fetchone()
    assert stray == (0,) and processed is not None and processed[0] > 0


def _burst(server: TallyServer, deliveries: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    async def send_all() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            answers = await asyncio.gather(*(client.post(PATH, content=body, headers=headers)
                                             for body, headers in deliveries))
        return [a.status_code for a in answers]

    return asyncio.run(send_all())


def test_a_burst_is_stored_in_groups_and_each_event_once(server: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    groups: list[int] = []
    real = service.store_events

    async def counted(conn: Any, events: list[Any]) -> set[str]:
        ours = sum(1 for e in events if e.id in ids)  # not other Tally servers' events in this process
        if ours:
            groups.append(ours)
        return await real(conn, events)

    monkeypatch.setattr(service, "store_events", counted)
    events = [make_event("tally.test.receiver_ok") for _ in range(30)]
    ids = {e["id"] for e in events}
    deliveries = [signed(e, server.webhook_secret) for e in events for _ in range(2)]  # each one twice
    random.shuffle(deliveries)
    assert _burst(server, deliveries) == [200] * len(deliveries)
    assert sum(groups) == len(deliveries) and max(groups) > 1, groups  # one INSERT carried several deliveries
    for event in events:
        wait_status(server, event["id"], "processed")
    wait_nothing_new(server)
    assert all(len(rows(server, e["id"])) == 1 and CALLS.count(e["id"]) == 1 for e in events)


def test_a_failing_event_in_a_group_fails_alone(server: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """If one event's insert fails, the others that shared its INSERT are stored one by one."""
    real = service.store_events

    async def refusing_poison(conn: Any, events: list[Any]) -> set[str]:
        if any(e.type == "tally.test.poison" for e in events):
            raise psycopg.errors.DataError("the database refused this row")
        return await real(conn, events)

    monkeypatch.setattr(service, "store_events", refusing_poison)
    poison = make_event("tally.test.poison")
    events = [make_event("tally.test.receiver_ok") for _ in range(20)]
    deliveries = [signed(e, server.webhook_secret) for e in [*events[:10], poison, *events[10:]]]
    statuses = _burst(server, deliveries)
    assert statuses[10] == 500 and statuses[:10] + statuses[11:] == [200] * 20, statuses
    for event in events:
        wait_status(server, event["id"], "processed")
    assert rows(server, poison["id"]) == []


def test_an_event_holding_a_nul_character_is_refused(server: TallyServer) -> None:
    # PostgreSQL's jsonb cannot store \u0000: refused as bad input (400), not a 500 that Stripe retries forever.
    event = make_event("tally.test.receiver_ok", obj={"id": "ch_nul", "object": "charge", "note": "a\u0000b"})
    answer = post(server, *signed(event, server.webhook_secret))
    assert answer.status_code == 400 and "NUL" in answer.json()["error"]["message"]
    assert rows(server, event["id"]) == []
    # The six characters \u0000 as text (an escaped backslash before them) are fine.
    event = make_event("tally.test.receiver_ok", obj={"id": "ch_text", "object": "charge", "note": "\\u0000"})
    assert post(server, *signed(event, server.webhook_secret)).status_code == 200
    wait_status(server, event["id"], "processed")
