"""The operator's credit tools against the real app: ``POST /v1/admin/credits/grants`` and ``/adjustments`` (who may
call them, exactly once per key, refusals), ``tally credits grant`` / ``adjust`` on the same database, and what the
user then sees in ``GET /v1/credits`` and ``GET /v1/credits/transactions``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from tally.cli import app as cli
from tally.ledger.cli import parse_expiry
from tests.integration.purchase_flow import new_user, sql
from tests.tally_harness import TallyServer


def grant(tally: TallyServer, **body: Any) -> Any:
    with tally.admin_client() as admin:
        return admin.post("/v1/admin/credits/grants", json=body)


def adjust(tally: TallyServer, **body: Any) -> Any:
    with tally.admin_client() as admin:
        return admin.post("/v1/admin/credits/adjustments", json=body)


def wallet(tally: TallyServer, user: str) -> dict[str, Any]:
    with tally.client(user) as client:
        answer = client.get("/v1/credits")
    assert answer.status_code == 200, answer.text
    return answer.json()


def transactions(tally: TallyServer, user: str) -> list[dict[str, Any]]:
    with tally.client(user) as client:
        answer = client.get("/v1/credits/transactions")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_a_promotional_grant_with_an_expiry_is_seen_by_the_user(tally: TallyServer) -> None:
    user, key = new_user(), f"welcome-{uuid.uuid4()}"  # a user Tally has never seen: created by the grant
    expires = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    made = grant(tally, user_id=user, amount=300, category="promotional", expires_at=expires.isoformat(),
                 reason="Welcome gift", idempotency_key=key)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["amount"], body["category"], body["balance"], body["available"], body["replayed"]) == (
        300, "promotional", 300, 300, False)
    assert datetime.fromisoformat(body["expires_at"]) == expires

    seen = wallet(tally, user)
    assert (seen["balance"], seen["available"], seen["held"]) == (300, 300, 0)
    assert [(g["category"], g["source"], g["remaining"]) for g in seen["grants"]] == [("promotional", "promotion", 300)]
    assert datetime.fromisoformat(seen["grants"][0]["expires_at"]) == expires
    assert [(e["amount"], datetime.fromisoformat(e["expires_at"])) for e in seen["expiring_soon"]] == [(300, expires)]
    [tx] = transactions(tally, user)
    assert (tx["kind"], tx["description"], tx["amount"], tx["balance_after"]) == ("promotion", "Welcome gift", 300, 300)

    again = grant(tally, user_id=user, amount=300, category="promotional", expires_at=expires.isoformat(),
                  reason="Welcome gift", idempotency_key=key)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["transaction_id"] == body["transaction_id"]
    assert len(transactions(tally, user)) == 1


def test_a_key_reused_for_something_else_is_refused(tally: TallyServer) -> None:
    user, key = new_user(), f"k-{uuid.uuid4()}"
    assert grant(tally, user_id=user, amount=100, category="paid", reason="Goodwill", idempotency_key=key
                 ).status_code == 201
    for changed in ({"amount": 101}, {"reason": "Other"}, {"category": "promotional"},
                    {"expires_at": "2099-01-01T00:00:00Z"}):
        refused = grant(tally, **{"user_id": user, "amount": 100, "category": "paid", "reason": "Goodwill",
                                  "idempotency_key": key, **changed})
        assert refused.status_code == 409, (changed, refused.text)
        assert refused.json()["error"]["param"] == "idempotency_key"
    assert adjust(tally, user_id=user, amount=-5, reason="Goodwill", idempotency_key=key).status_code == 409
    assert [t["amount"] for t in transactions(tally, user)] == [100]

    promoted = grant(tally, user_id=user, amount=10, category="promotional", reason="Gift", idempotency_key="gift")
    assert promoted.status_code == 201
    for amount in (-5, 10):
        assert adjust(tally, user_id=user, amount=amount, reason="Gift", idempotency_key="gift").status_code == 409
    assert [t["amount"] for t in transactions(tally, user)] == [10, 100]


def test_paid_grant_and_adjustments_up_and_down(tally: TallyServer) -> None:
    user = new_user()
    paid = grant(tally, user_id=user, amount=1000, category="paid", reason="Bank transfer for 1 000 credits")
    assert paid.status_code == 201 and paid.json()["expires_at"] is None
    first_key = paid.json()["idempotency_key"]
    # Without a key, each call is a movement of its own (and says which key it used).
    second = grant(tally, user_id=user, amount=1000, category="paid", reason="Bank transfer for 1 000 credits")
    assert second.status_code == 201 and second.json()["idempotency_key"] != first_key
    assert second.json()["balance"] == 2000

    down = adjust(tally, user_id=user, amount=-1500, reason="Double-booked transfer, and 500 used off-platform")
    assert down.status_code == 201, down.text
    assert (down.json()["amount"], down.json()["category"], down.json()["balance"]) == (-1500, None, 500)
    up = adjust(tally, user_id=user, amount=25, reason="Outage on 3 December")
    assert (up.json()["amount"], up.json()["category"], up.json()["balance"]) == (25, "paid", 525)

    too_much = adjust(tally, user_id=user, amount=-526, reason="More than there is")
    assert too_much.status_code == 409 and too_much.json()["error"]["type"] == "insufficient_credits"
    assert wallet(tally, user)["balance"] == 525

    shown = [(t["kind"], t["description"], t["amount"]) for t in transactions(tally, user)]
    assert shown == [("adjustment", "Outage on 3 December", 25),
                     ("adjustment", "Double-booked transfer, and 500 used off-platform", -1500),
                     ("adjustment", "Bank transfer for 1 000 credits", 1000),
                     ("adjustment", "Bank transfer for 1 000 credits", 1000)]


def test_only_operators_may_move_credits(tally: TallyServer) -> None:
    body = {"user_id": "someone", "amount": 10, "category": "paid", "reason": "Nope"}
    with tally.client("just-a-user") as user:
        assert user.post("/v1/admin/credits/grants", json=body).status_code == 403
        assert user.post("/v1/admin/credits/adjustments", json={"user_id": "someone", "amount": -1,
                                                                 "reason": "Nope"}).status_code == 403
    with tally.client() as anonymous:
        assert anonymous.post("/v1/admin/credits/grants", json=body).status_code == 401
    assert sql(tally, "SELECT count(*) FROM users WHERE id = 'someone'") == [(0,)]


@pytest.mark.parametrize(("path", "body", "param"), [
    ("grants", {"amount": 0, "category": "paid"}, "amount"),
    ("grants", {"amount": 10, "category": "gift"}, "category"),
    ("grants", {"amount": 10, "category": "paid", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ("grants", {"amount": 10, "category": "paid", "expires_at": "2099-01-01T00:00:00"}, "expires_at"),  # no zone
    ("grants", {"amount": 10, "category": "paid", "reason": ""}, "reason"),
    ("adjustments", {"amount": 0}, "amount"),
    ("adjustments", {"amount": 1.5}, "amount"),
])
def test_bad_requests_move_nothing(tally: TallyServer, path: str, body: dict[str, Any], param: str) -> None:
    user = new_user()
    with tally.admin_client() as admin:
        answer = admin.post(f"/v1/admin/credits/{path}", json={"user_id": user, "reason": "Test", **body})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE user_id = %s", user) == [(0,)]


# -- the commands -----------------------------------------------------------------------------------------------
def run(tally: TallyServer, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("TALLY_DATABASE_URL", tally.database_url)
    return CliRunner().invoke(cli, list(args))


def test_the_commands_grant_and_adjust(tally: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    user = new_user()
    last_day = (datetime.now(UTC) + timedelta(days=20)).date()
    granted = run(tally, monkeypatch, "credits", "grant", user, "400", "--promotional", "--expires",
                  last_day.isoformat(), "--reason", "Beta tester", "--key", "beta-1")
    assert granted.exit_code == 0, granted.output
    assert f"gave 400 promotional credits to {user}" in granted.output
    assert f"expiring {last_day + timedelta(days=1):%Y-%m-%d} 00:00 UTC" in granted.output

    replay = run(tally, monkeypatch, "credits", "grant", user, "400", "--promotional", "--expires",
                 last_day.isoformat(), "--reason", "Beta tester", "--key", "beta-1")
    assert replay.exit_code == 0 and "already done under this key" in replay.output

    paid = run(tally, monkeypatch, "credits", "grant", user, "100", "--reason", "Invoice 2026-77 paid by wire")
    assert paid.exit_code == 0 and "gave 100 paid credits" in paid.output
    down = run(tally, monkeypatch, "credits", "adjust", user, "-50", "--reason", "Duplicate job refunded twice")
    assert down.exit_code == 0, down.output
    assert f"took 50 credits from {user}" in down.output and "Balance 450" in down.output
    up = run(tally, monkeypatch, "credits", "adjust", user, "+5", "--reason", "Rounding")
    assert up.exit_code == 0 and "Balance 455" in up.output

    refused = run(tally, monkeypatch, "credits", "adjust", user, "-10000", "--reason", "Too much")
    assert refused.exit_code == 1 and "lower than 10000" in refused.output

    seen = wallet(tally, user)
    assert (seen["balance"], seen["available"]) == (455, 455)
    assert [(e["amount"], datetime.fromisoformat(e["expires_at"]).date()) for e in seen["expiring_soon"]] == [
        (350, last_day + timedelta(days=1))]  # the promotional grant is drawn first
    assert [(t["description"], t["amount"]) for t in transactions(tally, user)] == [
        ("Rounding", 5), ("Duplicate job refunded twice", -50), ("Invoice 2026-77 paid by wire", 100),
        ("Beta tester", 400)]


def test_the_commands_refuse_bad_input(tally: TallyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    user = new_user()
    for args in (["grant", user, "10", "--expires", "31/01/2027", "--reason", "x"],
                 ["grant", user, "0", "--reason", "x"], ["adjust", user, "ten", "--reason", "x"],
                 ["grant", user, "10"]):
        result = run(tally, monkeypatch, "credits", *args)
        assert result.exit_code == 2, (args, result.output)
    zero = run(tally, monkeypatch, "credits", "adjust", user, "0", "--reason", "x")
    assert zero.exit_code == 1 and "at least one credit" in zero.output
    assert sql(tally, "SELECT count(*) FROM ledger_transactions WHERE user_id = %s", user) == [(0,)]


def test_expiry_dates_mean_the_end_of_that_utc_day() -> None:
    assert parse_expiry("2027-01-31") == datetime(2027, 2, 1, tzinfo=UTC)
    assert parse_expiry("2027-01-31T18:00:00+02:00") == datetime(2027, 1, 31, 16, tzinfo=UTC)
    assert parse_expiry("2027-01-31T18:00") == datetime(2027, 1, 31, 18, tzinfo=UTC)
    assert parse_expiry(None) is None
