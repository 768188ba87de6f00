"""Stripe failing under Tally (the sandbox told to answer 500 or 429, or to lose its answers): checkout creation
fails with a clear 503 and leaves no order behind; the SDK's retries reuse one idempotency key, so a lost answer
never makes a second customer or Checkout Session; webhook processing that needs Stripe waits and resumes when
Stripe is back; every paid order is credited once and ``tally ledger check`` passes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.harness import (Cluster, Purchase, assert_credited_once, assert_ledger_check_passes, buy,
                                  new_user, pay, sql, wait_settled, wait_until)
from tests.tally_harness import fresh_database


def faulted(cluster: Cluster, path: str) -> list[dict[str, Any]]:
    return [i for i in cluster.control("GET", "/_sandbox/faults")["injected"] if i["path"] == path]


def orders_of(cluster: Cluster, user: str) -> list[tuple[Any, ...]]:
    return sql(cluster.database_url, "SELECT id, status FROM orders WHERE user_id = %s", user)


def order_ids(cluster: Cluster, user: str) -> set[Any]:
    """The user's orders, whatever their status: a paid order settling meanwhile is not a new order."""
    return {order_id for order_id, _ in orders_of(cluster, user)}


def sessions_for(cluster: Cluster, order_id: str) -> list[str]:
    listed = cluster.stripe().v1.checkout.sessions.list(params={"limit": 100}).auto_paging_iter()
    return [s.id for s in listed if s.client_reference_id == order_id]


def checkout(cluster: Cluster, user: str, pack: str = "starter") -> Any:
    with cluster.client(user) as client:
        return client.post("/v1/checkout", json={"pack_id": pack})


@pytest.mark.timeout(600)
def test_stripe_down_then_back() -> None:
    with fresh_database() as url, Cluster(url) as cluster:
        cluster.start_api()
        cluster.start_worker()
        purchases = buy(cluster, 2)  # Stripe up: customers exist, prices are synced

        # 1. Stripe answers 500 to everything: a new buyer's checkout is a 503 that says so; nothing is kept.
        cluster.control("POST", "/_sandbox/faults", {"status": 500, "seconds": 600})
        newcomer = new_user()
        refused = checkout(cluster, newcomer)
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["type"] == "payment_provider_unavailable" and "nothing was charged" in error["message"]
        assert orders_of(cluster, newcomer) == []
        assert sql(url, "SELECT count(*) FROM users WHERE id = %s", newcomer) == [(0,)]
        # The SDK retried the customer creation, always with the key Tally derived from the user.
        tries = faulted(cluster, "/v1/customers")
        assert len(tries) == 3 and {t["idempotency_key"] for t in tries} == {f"tally:user:{newcomer}:customer"}

        # A known buyer gets as far as the Checkout Session: same 503, same single key, no order.
        known = purchases[0].user
        before = order_ids(cluster, known)
        assert checkout(cluster, known).status_code == 503
        assert order_ids(cluster, known) == before
        keys = {t["idempotency_key"] for t in faulted(cluster, "/v1/checkout/sessions")}
        assert len(keys) == 1 and keys.pop().endswith(":checkout")

        # 2. Stripe back for a moment (a checkout starts), then down again while the buyer pays on its page (the
        # page is up, the API is not): the webhook is stored, processing it fails while the session cannot be
        # re-fetched, the order waits unpaid, and reading it is a clear 503 too.
        cluster.control("DELETE", "/_sandbox/faults")
        started = checkout(cluster, known, "plus")
        assert started.status_code == 200, started.text
        order = started.json()
        cluster.control("POST", "/_sandbox/faults", {"status": 500, "seconds": 600})
        pay(cluster, order["session_id"])
        wait_until(lambda: sql(url, "SELECT attempts FROM webhook_events WHERE type = 'checkout.session.completed' "
                                    "AND payload->'data'->'object'->>'id' = %s", order["session_id"])
                   not in ([], [(0,)]), 60, "a failed attempt at the paid session's event")
        assert dict(orders_of(cluster, known))[order["order_id"]] == "pending"
        with cluster.client(known) as client:
            read = client.get(f"/v1/orders/{order['order_id']}")
        assert read.status_code == 503 and read.json()["error"]["type"] == "payment_provider_unavailable"

        # 3. Stripe is back: the retries go through and the order is credited once.
        cluster.control("DELETE", "/_sandbox/faults")
        paid = Purchase(known, order["order_id"], order["session_id"], "plus")
        wait_until(lambda: dict(orders_of(cluster, known))[paid.order_id] == "paid", 90,
                   "the order paid after Stripe's return")
        purchases.append(paid)

        # The newcomer retries and buys: one customer for them in Stripe, whatever the failed attempts did.
        again = checkout(cluster, newcomer)
        assert again.status_code == 200, again.text
        customers = cluster.stripe().v1.customers.list(params={"email": f"{newcomer}@example.com"})
        assert [c.metadata["user_id"] for c in customers.data] == [newcomer]
        pay(cluster, again.json()["session_id"])
        purchases.append(Purchase(newcomer, again.json()["order_id"], again.json()["session_id"], "starter"))

        wait_settled(cluster, timeout=120)
        assert_credited_once(cluster, purchases)
        assert_ledger_check_passes(cluster)


@pytest.mark.timeout(300)
def test_rate_limited_and_lost_answers() -> None:
    with fresh_database() as url, Cluster(url) as cluster:
        cluster.start_api()
        cluster.start_worker()
        purchases = buy(cluster, 1, users=1)
        user = purchases[0].user

        # 429: not retried by the SDK; a clear 503 to the caller and no order.
        # (POST only: the worker's reconciliation lists sessions with GET and must not use the fault up)
        cluster.control("POST", "/_sandbox/faults", {"status": 429, "count": 1, "path": "/v1/checkout/sessions",
                                                     "method": "POST"})
        before = order_ids(cluster, user)
        limited = checkout(cluster, user)
        assert limited.status_code == 503 and "retry" in limited.json()["error"]["message"]
        assert order_ids(cluster, user) == before

        # One answer lost after Stripe made the session: the SDK's retry with the same key gets it back, so the
        # checkout succeeds with exactly one session for the order.
        cluster.control("POST", "/_sandbox/faults", {"status": 500, "count": 1, "when": "after",
                                                     "path": "/v1/checkout/sessions", "method": "POST"})
        started = checkout(cluster, user)
        assert started.status_code == 200, started.text
        order = started.json()
        assert sessions_for(cluster, order["order_id"]) == [order["session_id"]]
        lost = faulted(cluster, "/v1/checkout/sessions")[-1]
        assert lost["when"] == "after" and lost["idempotency_key"] == f"tally:order:{order['order_id']}:checkout"
        pay(cluster, order["session_id"])
        purchases.append(Purchase(user, order["order_id"], order["session_id"], "starter"))

        # Every answer lost: Tally gives up with a 503 and keeps no order; Stripe holds one session for that
        # order id (made once, replayed twice), which nobody was ever sent to.
        cluster.control("POST", "/_sandbox/faults", {"status": 503, "count": 3, "when": "after",
                                                     "path": "/v1/checkout/sessions", "method": "POST"})
        before = order_ids(cluster, user)  # the order paid just above may settle meanwhile
        gave_up = checkout(cluster, user)
        assert gave_up.status_code == 503
        assert order_ids(cluster, user) == before
        tries = faulted(cluster, "/v1/checkout/sessions")[-3:]
        key = tries[0]["idempotency_key"]
        assert {t["idempotency_key"] for t in tries} == {key}
        orphan_order = key.split(":")[2]
        assert len(sessions_for(cluster, orphan_order)) == 1

        wait_settled(cluster, timeout=90)
        assert_credited_once(cluster, purchases)
        assert_ledger_check_passes(cluster)
