"""The core flow on both kinds of PostgreSQL Tally runs on: the embedded one (pgserver, no settings) and an
external server (``TALLY_DATABASE_URL``'s, or the machine's own). The rest of the suite runs on whichever is
available; this runs the purchase, the webhook, a spend, a refund and the ledger check on each."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tally.db import Database
from tally.ledger.check import run_check
from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, order_row, pay, sdk, sql,
                                             wait_until)
from tests.tally_harness import TallyServer, external_postgres_reachable, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


@pytest.fixture(scope="module", params=["embedded", "external"])
def server(request: pytest.FixtureRequest) -> Iterator[TallyServer]:
    if request.param == "external" and not external_postgres_reachable():
        pytest.skip("no external PostgreSQL (TALLY_DATABASE_URL's server, or 127.0.0.1:5432)")
    with fresh_database(request.param) as url, TallyServer(url) as tally:
        yield tally


def test_purchase_spend_refund_and_ledger_check(server: TallyServer) -> None:
    user = new_user()
    with server.client(user) as client:
        started = checkout(client, "plus")  # 1 000 coins + 100 bonus
        pay(server, started["session_id"])
        wait_until(lambda: client.get(f"/v1/orders/{started['order_id']}").json()["status"] == "paid", "paid")
        assert client.get("/v1/credits").json()["balance"] == 1100
        spent = client.post("/v1/credits/spend", json={"amount": 100, "reason": "test", "idempotency_key": "k"})
        assert spent.status_code == 200 and spent.json()["balance"] == 1000
        payment_intent = order_row(server, started["order_id"])["stripe_payment_intent_id"]
        sdk(server).v1.refunds.create(params={"payment_intent": payment_intent})
        wait_until(lambda: client.get("/v1/credits").json()["balance"] == -100, "the refund clawed back")
    assert sql(server, "SELECT status FROM orders WHERE id = %s", started["order_id"]) == [("refunded",)]

    async def check() -> Any:
        db = Database(server.database_url, pool_size=1)
        try:
            return await run_check(db)
        finally:
            await db.dispose()

    report = asyncio.run(check())
    assert report.ok, report.as_json()
