"""Disputes through the sandbox: a pack paid with the card that is charged back (4000 0000 0000 0259) loses
its credits when the dispute opens and gets them back when the dispute is won, once each, whatever the order
and number of the events; a lost dispute keeps them; the operator is told once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from tests.integration.purchase_flow import (
    STRIPE_HTTPX_WARNING,
    checkout,
    new_user,
    pay,
    processed_events,
    sdk,
    sql,
    wait_until,
)
from tests.integration.test_ledger_check import check
from tests.webhook_signing import deliver

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

CHARGED_BACK = "4000000000000259"
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.updated",
                  "charge.dispute.funds_reinstated", "charge.dispute.closed")


def buy_disputed(tally: Any, user: str, pack: str = "plus") -> dict[str, Any]:
    with tally.client(user) as client:
        started = checkout(client, pack)
        assert pay(tally, started["session_id"], card=CHARGED_BACK).status_code in (200, 303)
    pi = sdk(tally).v1.checkout.sessions.retrieve(started["session_id"]).payment_intent
    (dispute,) = sdk(tally).v1.disputes.list(params={"payment_intent": pi}).data
    return {"order_id": started["order_id"], "session_id": started["session_id"], "payment_intent": pi,
            "dispute": dispute.id}


def credits(tally: Any, user: str) -> dict[str, Any]:
    with tally.client(user) as client:
        return client.get("/v1/credits").json()


def dispute_transactions(tally: Any, user: str) -> list[tuple[str, int]]:
    return sql(tally, """SELECT t.kind, sum(e.amount)::int FROM ledger_transactions t
                         JOIN ledger_entries e ON e.transaction_id = t.id
                         JOIN wallet_balances w ON w.account_id = e.account_id
                         WHERE t.user_id = %s AND t.kind IN ('dispute', 'reinstatement')
                         GROUP BY t.id, t.kind ORDER BY t.id""", user)


def settled(tally: Any, dispute_id: str, count: int) -> None:
    wait_until(lambda: sum(1 for _, status in processed_events(tally, dispute_id) if status == "processed")
               >= count, f"{count} events of {dispute_id} processed")


def test_chargeback_takes_the_credits_and_a_win_gives_them_back(tally: Any) -> None:
    user = new_user()
    bought = buy_disputed(tally, user)  # plus: 1000 coins + 100 bonus
    wait_until(lambda: dispute_transactions(tally, user) == [("dispute", -1100)], "the chargeback reversed")
    assert credits(tally, user)["balance"] == 0
    row = sql(tally, "SELECT status, reason, credits_withdrawn, order_id FROM disputes WHERE id = %s",
              bought["dispute"])
    assert row == [("needs_response", "fraudulent", 1100, bought["order_id"])]

    sdk(tally).v1.disputes.update(bought["dispute"], params={"evidence": {"uncategorized_text": "winning_evidence"}})
    wait_until(lambda: dispute_transactions(tally, user) == [("dispute", -1100), ("reinstatement", 1100)],
               "the won dispute gave the credits back")
    assert credits(tally, user)["balance"] == 1100
    wait_until(lambda: sql(tally, "SELECT status, credits_reinstated FROM disputes WHERE id = %s",
                           bought["dispute"]) == [("won", 1100)], "the dispute recorded as won")
    with tally.admin_client() as admin:
        notices = [m for m in admin.get("/v1/admin/outbox", params={"to": "operator@localhost"}).json()["data"]
                   if m["kind"] == "dispute_opened" and bought["dispute"] in m["body"]]
    assert len(notices) == 1 and notices[0]["to"] == "operator@localhost"


def test_a_lost_dispute_keeps_the_credits_taken_even_when_they_were_spent(tally: Any) -> None:
    user = new_user()
    with tally.client(user) as client:
        started = checkout(client, "starter")  # 500 coins, paid with a good card first
        pay(tally, started["session_id"])
        wait_until(lambda: client.get("/v1/credits").json()["balance"] == 500, "funded")
        assert client.post("/v1/credits/spend", json={"amount": 400, "reason": "used",
                                                      "idempotency_key": "u"}).status_code == 200
    bought = buy_disputed(tally, user, "starter")
    wait_until(lambda: dispute_transactions(tally, user) == [("dispute", -500)], "the chargeback reversed")
    # The disputed pack's own credits go first; nothing else was left to take.
    assert credits(tally, user)["balance"] == 100
    sdk(tally).v1.disputes.close(bought["dispute"])
    wait_until(lambda: sql(tally, "SELECT status FROM disputes WHERE id = %s", bought["dispute"]) == [("lost",)],
               "lost")
    assert dispute_transactions(tally, user) == [("dispute", -500)] and credits(tally, user)["balance"] == 100


def test_shuffled_and_duplicated_events_reverse_once_each(tally: Any) -> None:
    user = new_user()
    httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/pause")
    try:
        bought = buy_disputed(tally, user)
        sdk(tally).v1.disputes.update(bought["dispute"],
                                      params={"evidence": {"uncategorized_text": "winning_evidence"}})
        ours = (bought["dispute"], bought["session_id"], bought["payment_intent"])
        events = [e for e in (e.to_dict() for e in sdk(tally).v1.events.list(params={"limit": 100}).data)
                  if e["data"]["object"].get("id") in ours]  # some objects (tax.settings) have no id
        assert {e["type"] for e in events} >= {"charge.dispute.created", "charge.dispute.funds_reinstated",
                                               "checkout.session.completed"}
        copies = [{**e, "id": f"{e['id']}_copy{i}"} for e in events for i in range(2)]
        shuffled = events + copies
        random.Random(14).shuffle(shuffled)
        statuses = asyncio.run(deliver(tally.url + "/v1/webhooks/stripe", shuffled, tally.webhook_secret,
                                       concurrency=4))
        assert set(statuses) == {200}
    finally:
        httpx.post(f"{tally.sandbox.url}/_sandbox/webhooks/resume")
    dispute_events = sum(1 for e in events if e["type"].startswith("charge.dispute."))
    settled(tally, bought["dispute"], dispute_events * 3)
    assert dispute_transactions(tally, user) == [("dispute", -1100), ("reinstatement", 1100)]
    assert credits(tally, user)["balance"] == 1100
    report = check(tally.database_url)
    assert "dispute_mismatch" not in report.totals and "grants_balance_mismatch" not in report.totals, report.as_json()
