"""Reconciliation (``tally sync``): a webhook outage heals from Stripe's records, crediting every paid order and
subscription invoice exactly once, whatever arrives afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tally.cli import app as cli
from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, pay, sdk, sql,
                                             wait_processed, wait_until)
from tests.tally_harness import TallyServer, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


@pytest.fixture(scope="module")
def tally() -> Iterator[TallyServer]:
    # The periodic sync is off here, so that what gets repaired is what the command reports.
    with fresh_database() as url, TallyServer(url, TALLY_SYNC_EVERY_MINUTES="0") as server:
        yield server


def run_sync(tally: TallyServer, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """``tally sync --json`` as an operator runs it: same database and Stripe (here its sandbox) as the server."""
    monkeypatch.setenv("TALLY_DATABASE_URL", tally.database_url)
    monkeypatch.setenv("STRIPE_API_BASE", tally.sandbox.url)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["sync", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def credits(tally: TallyServer, user: str) -> tuple[int, int]:
    """(balance, number of ledger transactions) of a user."""
    with tally.client(user) as client:
        balance = client.get("/v1/credits").json()["balance"]
        transactions = client.get("/v1/credits/transactions").json()["data"]
    return balance, len(transactions)


def test_outage_heals_with_every_paid_order_credited_once(tally: TallyServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run_sync(tally, monkeypatch)  # start from a settled cursor
    buyers = {new_user(): pack for pack in ("starter", "pro", "starter")}
    subscriber = new_user()
    httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
    try:
        orders = {}
        for user, pack in buyers.items():
            with tally.client(user) as client:
                started = checkout(client, pack)
                assert pay(tally, started["session_id"]).status_code in (200, 303)
                orders[user] = started
        with tally.client(subscriber) as client:
            response = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic", "interval": "month"})
            assert response.status_code == 200, response.text
            assert pay(tally, response.json()["session_id"]).status_code in (200, 303)
        # Nothing arrived: no credits yet (the orders are only read from the database here, never through
        # GET /v1/orders/{id}, which would fulfil on read).
        for user, started in orders.items():
            assert sql(tally, "SELECT status FROM orders WHERE id = %s", started["order_id"]) == [("pending",)]
            assert credits(tally, user) == (0, 0)
        assert credits(tally, subscriber) == (0, 0)

        report = run_sync(tally, monkeypatch)
        # Every missed event is in the inbox now, queued for the worker; whatever its handler had not done by
        # the time the comparison ran was repaired by the command itself (the two race, harmlessly).
        stored = set(report["events_stored"])
        for started in orders.values():
            session_events = {e.id for e in sdk(tally).v1.events.list(params={
                "type": "checkout.session.completed", "limit": 100}).data
                if e.data.object.id == started["session_id"]}
            assert session_events <= stored
        assert any(r["kind"] == "order" for r in report["repaired"]) or report["events_stored"]
        # When the command returns, every paid order and invoice is credited, once.
        expected = {"starter": 500, "pro": 3000}
        for user, pack in buyers.items():
            balance, transactions = credits(tally, user)
            assert transactions == 1 and balance >= expected[pack], (user, balance)
        assert credits(tally, subscriber) == (1000, 1)

        # The stored events are processed by the worker as if delivered; they change nothing more.
        for started in orders.values():
            wait_processed(tally, started["session_id"], "checkout.session.completed")
        again = run_sync(tally, monkeypatch)
        assert again["repaired"] == [] and again["events_stored"] == []
    finally:
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")

    # The held deliveries arrive now: duplicates in the inbox, nothing credited twice.
    events = [e.id for e in sdk(tally).v1.events.list(params={"type": "checkout.session.completed",
                                                              "limit": 100}).data]
    wait_until(lambda: not httpx.get(f"{tally.sandbox.url}/_sandbox/deliveries").json()["pending"],
               "held deliveries")
    for user, pack in buyers.items():
        assert credits(tally, user)[1] == 1
    assert credits(tally, subscriber) == (1000, 1)
    for started in orders.values():
        assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE order_id = %s",
                   started["order_id"]) == [(1,)]
        assert sql(tally, "SELECT count(*) FROM invoices WHERE order_id = %s", started["order_id"]) == [(1,)]
    assert sql(tally, "SELECT count(*) FROM webhook_events WHERE id = ANY(%s)", events) == [(len(events),)]


def test_cursor_moves_forward_and_reports_are_kept(tally: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_sync(tally, monkeypatch)
    second = run_sync(tally, monkeypatch)
    assert second["since"] >= first["since"] and second["cursor"] >= first["cursor"]
    (row,) = sql(tally, "SELECT cursor, last_report FROM reconcile_cursors WHERE name = 'stripe'")
    assert row[0] == second["cursor"] and row[1]["cursor"] == second["cursor"]


def test_sync_needs_a_stripe_to_talk_to(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["sync"])
    assert result.exit_code == 1 and "STRIPE_API_BASE" in result.output


def test_without_a_worker_the_command_itself_repairs_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker runs, so the stored events stay pending and every credit comes from the comparison pass:
    each paid order and the paid subscription invoice is reported as repaired, once."""
    with fresh_database() as url, TallyServer(url, run_worker=False, TALLY_SYNC_EVERY_MINUTES="0") as tally:
        buyer, subscriber = new_user(), new_user()
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
        with tally.client(buyer) as client:
            started = checkout(client, "pro")
            pay(tally, started["session_id"])
        with tally.client(subscriber) as client:
            response = client.post("/v1/subscriptions/checkout", json={"plan_id": "basic", "interval": "month"})
            pay(tally, response.json()["session_id"])

        report = run_sync(tally, monkeypatch)
        kinds = {(r["kind"], r["record"]) for r in report["repaired"]}
        assert ("order", started["order_id"]) in kinds
        assert [k for k in kinds if k[0] == "subscription_invoice"]
        assert len(report["repaired"]) == 2, report["repaired"]
        assert credits(tally, buyer)[1] == 1 and credits(tally, subscriber) == (1000, 1)
        assert report["events_stored"] and sql(tally, "SELECT count(*) FROM webhook_events WHERE id = ANY(%s) "
                                                      "AND status = 'pending'", report["events_stored"]) \
            == [(len(report["events_stored"]),)]

        again = run_sync(tally, monkeypatch)
        assert again["repaired"] == [] and again["events_stored"] == []
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")


def test_the_worker_s_periodic_sync_heals_an_outage_without_anyone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's own task (not the command): a Checkout purchase and a PaymentIntent confirmed by the
    buyer's browser straight with Stripe (Stripe.js), both while no webhook arrives, are credited once by the
    periodic sync. The job is queued by hand here rather than waiting for its minute; the cron entry is the
    same task."""
    import asyncio

    from tally.worker import make_job_app

    with fresh_database() as url, TallyServer(url, TALLY_SYNC_EVERY_MINUTES="1",
                                              TALLY_SYNC_GRACE_SECONDS="0") as tally:
        checkout_buyer, intent_buyer = new_user(), new_user()
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
        try:
            with tally.client(checkout_buyer) as client:
                started = checkout(client, "starter")
                pay(tally, started["session_id"])
            with tally.client(intent_buyer) as client:
                order = client.post("/v1/orders", json={"pack_id": "plus"}).json()
                intent = client.post(f"/v1/orders/{order['order_id']}/payment-intent", json={}).json()
            sdk(tally).v1.payment_intents.confirm(intent["payment_intent_id"],
                                                  params={"payment_method": "pm_card_visa"})
            assert credits(tally, checkout_buyer) == (0, 0) and credits(tally, intent_buyer) == (0, 0)

            async def queue_sync() -> None:
                jobs = make_job_app(url, tally.settings)
                await jobs.open_async()
                try:
                    await jobs.configure_task("reconcile:sync", queueing_lock="reconcile:sync").defer_async(
                        timestamp=0)
                finally:
                    await jobs.close_async()

            asyncio.run(queue_sync())
            wait_until(lambda: (credits(tally, checkout_buyer), credits(tally, intent_buyer)) == ((500, 1), (1100, 1)),
                       "the periodic sync credited both", timeout=60)
            assert sql(tally, "SELECT status FROM procrastinate_jobs WHERE task_name = 'reconcile:sync' "
                              "ORDER BY id DESC LIMIT 1") in ([("succeeded",)], [])  # finished jobs are deleted
        finally:
            httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")
        wait_until(lambda: not httpx.get(f"{tally.sandbox.url}/_sandbox/deliveries").json()["pending"],
                   "held deliveries")
        assert credits(tally, checkout_buyer) == (500, 1) and credits(tally, intent_buyer) == (1100, 1)
