"""The ledger's guarantees: balanced double entries, append-only rows, refunds clawed back once per Stripe
refund (partial and full), and what happens when the refunded coins were already spent."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from tally.db import libpq_url
from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, order_row, pay, sdk, sql,
                                             wait_until)
from tests.webhook_signing import deliver

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def _paid_order(tally: Any, client: Any, pack: str) -> dict[str, Any]:
    started = checkout(client, pack)
    pay(tally, started["session_id"])
    wait_until(lambda: client.get(f"/v1/orders/{started['order_id']}").json()["status"] == "paid", "paid")
    row = order_row(tally, started["order_id"])
    return {**started, "payment_intent": row["stripe_payment_intent_id"]}


def _refund(tally: Any, order: dict[str, Any], amount: int | None = None) -> str:
    params: dict[str, Any] = {"payment_intent": order["payment_intent"]}
    if amount is not None:
        params["amount"] = amount
    refund = sdk(tally).v1.refunds.create(params=params)
    charge = refund.charge if isinstance(refund.charge, str) else refund.charge.id
    return charge


def _refund_processed(tally: Any, order_id: str, count: int) -> None:
    wait_until(lambda: sql(tally, "SELECT count(*) FROM ledger_transactions WHERE order_id = %s AND kind = 'refund'",
                           order_id)[0][0] == count, f"{count} refunds recorded")


def test_every_transaction_balances_and_wallet_matches_entries(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        _paid_order(tally, client, "plus")
        assert client.post("/v1/credits/spend", json={"amount": 100, "reason": "x", "idempotency_key": "k1"}
                           ).status_code == 200
    assert sql(tally, "SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0") == []
    (balance, entries_sum, last_after), = sql(tally, """
        SELECT w.balance, sum(e.amount),
               (SELECT balance_after FROM ledger_entries WHERE account_id = w.account_id ORDER BY id DESC LIMIT 1)
        FROM wallet_balances w JOIN ledger_entries e ON e.account_id = w.account_id
        WHERE w.user_id = %s GROUP BY w.balance, w.account_id""", user)
    assert balance == entries_sum == last_after == 1000


def test_database_refuses_unbalanced_or_edited_entries(tally: Any) -> None:
    url = libpq_url(tally.database_url)
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        tx = conn.execute("INSERT INTO ledger_transactions (reference, kind) VALUES (%s, 'test') RETURNING id",
                          (f"test:{uuid.uuid4()}",)).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO ledger_entries (transaction_id, account_id, amount, kind) "
                     "SELECT %s, id, 5, 'test' FROM ledger_accounts WHERE code = 'system:bonuses'", (tx,))
        conn.commit()  # the deferred trigger checks the sum here
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE ledger_entries SET amount = amount + 1 WHERE id = (SELECT min(id) FROM ledger_entries)")


def test_partial_then_full_refund_claws_back_exactly_the_pack(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        order = _paid_order(tally, client, "plus")  # 999 cents → 1000 + 100 coins
        _refund(tally, order, 333)
        _refund_processed(tally, order["order_id"], 1)
        assert client.get("/v1/credits").json()["balance"] == 1100 - 1100 * 333 // 999
        status = client.get(f"/v1/orders/{order['order_id']}").json()
        assert status["status"] == "paid" and status["amount_refunded"] == 333

        charge = _refund(tally, order)  # the rest
        _refund_processed(tally, order["order_id"], 2)
        assert client.get("/v1/credits").json()["balance"] == 0
        status = client.get(f"/v1/orders/{order['order_id']}").json()
        assert status["status"] == "refunded" and status["amount_refunded"] == 999
        assert status["coins_clawed_back"] == 1100

        # charge.refunded again, under a new event id (so the inbox cannot dedupe it): nothing more is taken.
        event = next(e.to_dict() for e in sdk(tally).v1.events.list(params={"type": "charge.refunded",
                                                                            "limit": 100}).data
                     if e.data.object.id == charge)
        copy = {**event, "id": event["id"] + "_again"}
        assert asyncio.run(deliver(tally.url + "/v1/webhooks/stripe", [copy], tally.webhook_secret)) == [200]
        wait_until(lambda: sql(tally, "SELECT status FROM webhook_events WHERE id = %s", copy["id"])
                   == [("processed",)], "the copy processed")
        assert client.get("/v1/credits").json()["balance"] == 0
        kinds = [t["kind"] for t in client.get("/v1/credits/transactions").json()["data"]]
        assert kinds == ["refund", "refund", "purchase"]


def test_refund_of_spent_coins_leaves_a_debt_and_blocks_spending(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        order = _paid_order(tally, client, "starter")  # 500 coins
        assert client.post("/v1/credits/spend", json={"amount": 400, "reason": "used", "idempotency_key": "a"}
                           ).json()["balance"] == 100
        _refund(tally, order)
        _refund_processed(tally, order["order_id"], 1)
        # The whole pack is taken back: the wallet owes 400 (documented in tally.ledger.service).
        assert client.get("/v1/credits").json()["balance"] == -400
        txs = client.get("/v1/credits/transactions").json()["data"]
        assert txs[0]["kind"] == "refund" and txs[0]["amount"] == -500 and txs[0]["balance_after"] == -400
        refused = client.post("/v1/credits/spend", json={"amount": 1, "reason": "more", "idempotency_key": "b"})
        assert refused.status_code == 409 and refused.json()["error"]["type"] == "insufficient_credits"
        # The next purchase pays the debt first.
        _paid_order(tally, client, "starter")
        assert client.get("/v1/credits").json()["balance"] == 100


def test_refunds_listed_in_any_order_add_up_to_the_pack(tally: Any) -> None:
    """Stripe lists refunds newest first and ties in ``created`` are common: the clawback must not depend
    on the order in which refunds are seen. Here the refund records are given directly to the service."""
    from tally.db import Database
    from tally.orders.refunds import apply_refunds

    user = new_user()
    with tally.client(user) as client:
        order = _paid_order(tally, client, "plus")  # 999 → 1100 coins

    async def run(refunds: list[dict[str, Any]]) -> None:
        db = Database(tally.database_url, pool_size=1)
        try:
            async with db.transaction() as session:
                await apply_refunds(session, order_id=order["order_id"], refunds=refunds)
        finally:
            await db.dispose()

    small = {"id": f"re_{uuid.uuid4().hex}", "amount": 333, "status": "succeeded", "currency": "usd"}
    rest = {"id": f"re_{uuid.uuid4().hex}", "amount": 666, "status": "succeeded", "currency": "usd"}
    asyncio.run(run([small]))
    asyncio.run(run([rest, small]))  # the recorded one listed last
    asyncio.run(run([small, rest]))  # and again: nothing more
    with tally.client(user) as client:
        assert client.get("/v1/credits").json()["balance"] == 0
        status = client.get(f"/v1/orders/{order['order_id']}").json()
        assert (status["status"], status["coins_clawed_back"], status["amount_refunded"]) == ("refunded", 1100, 999)
