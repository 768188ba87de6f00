"""The credits API's fast path (``tally.ledger.fast_path``) answers exactly as FastAPI's own routes do.

The same sequence of requests (spends, replays, conflicts, a short wallet, holds, captures, releases, and
bodies, ids and credentials FastAPI refuses) is sent for two users funded alike: one user's requests say
``Content-Type: application/json``, which the fast path serves; the other's ``application/vnd.tally+json``,
which FastAPI reads as JSON too but the fast path leaves to FastAPI. Every answer must match, ids and times
aside; and the fast path must have served the first user's requests only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from tally.db import Database, libpq_url
from tally.ledger import credits
from tally.ledger import fast_path
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

VARIABLE = {"transaction_id", "id", "created_at", "expires_at"}  # differ between the two users by nature
HOLD = "{hold}"  # stands for the user's first hold's id in a path


def funded_user(database_url: str, amount: int) -> str:
    user = f"fast-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) VALUES (%s)", (user,))

    async def fund() -> None:
        db = Database(database_url, pool_size=1)
        try:
            async with db.transaction() as session:
                await credits.adjust(session, user_id=user, delta=amount, reason="test funds", key="fund")
        finally:
            await db.dispose()

    asyncio.run(fund())
    return user


SPEND = "/v1/credits/spend"
HOLDS = "/v1/credits/holds"
REQUESTS: list[tuple[str, Any]] = [
    (SPEND, {"amount": 30, "reason": "sword", "idempotency_key": "k1"}),
    (SPEND, {"amount": 30, "reason": "sword", "idempotency_key": "k1"}),  # a replay
    (SPEND, {"amount": 31, "reason": "sword", "idempotency_key": "k1"}),  # the key reused differently
    (SPEND, {"amount": 10**6, "reason": "too much", "idempotency_key": "k2"}),
    (SPEND, {"amount": 0, "reason": "r", "idempotency_key": "k3"}),
    (SPEND, {"amount": "5", "reason": "r", "idempotency_key": "k3"}),
    (SPEND, {"amount": 5, "reason": "r", "idempotency_key": "k3", "extra": True}),
    (SPEND, {"amount": 5, "reason": "nul \u0000 inside", "idempotency_key": "k3"}),
    (SPEND, b"{not json"),
    (SPEND, b""),
    (HOLDS, {"amount": 20, "idempotency_key": "h1", "reason": "render"}),
    (HOLDS, {"amount": 20, "idempotency_key": "h1", "reason": "render"}),  # a replay: 200
    (HOLDS, {"amount": 21, "idempotency_key": "h1", "reason": "render"}),
    (HOLDS, {"amount": 5, "idempotency_key": "h2", "expires_in_seconds": 0}),
    (HOLDS, {"amount": 10**6, "idempotency_key": "h3"}),
    (f"{HOLDS}/{HOLD}/capture", {"amount": 50}),  # more than held
    (f"{HOLDS}/{HOLD}/capture", {"amount": 5}),
    (f"{HOLDS}/{HOLD}/capture", {}),  # no longer held: 409 with its state
    (f"{HOLDS}/{HOLD}/release", None),
    (f"{HOLDS}/hold_nosuchhold/capture", {}),
    (f"{HOLDS}/not-a-hold-id/capture", {}),
    (f"{HOLDS}/{'hold_' + 'x' * 40}/capture", {}),
    (SPEND, {"amount": 1, "reason": "last", "idempotency_key": "k4"}),
]


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "…" if k in VARIABLE else normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def answers(client: httpx.Client, content_type: str) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    first_hold = ""
    for path, body in REQUESTS:
        content = body if isinstance(body, bytes) else b"" if body is None else httpx.Request(
            "POST", "/", json=body).content
        response = client.post(path.replace(HOLD, first_hold), content=content,
                               headers={"Content-Type": content_type})
        payload = response.json()
        if path == HOLDS and response.status_code == 201:
            first_hold = first_hold or payload["id"]
        out.append((response.status_code, normalised(payload)))
    return out


def test_the_fast_path_answers_as_fastapi_does(tally: Any, monkeypatch: Any) -> None:
    served: list[str] = []
    real = fast_path._caller

    async def counted(call: Any) -> Any:  # every direct call asks for the caller; counted once it is known
        principal = await real(call)
        served.append(call.request.url.path)
        return principal

    monkeypatch.setattr(fast_path, "_caller", counted)
    fast_user, slow_user = funded_user(tally.database_url, 100), funded_user(tally.database_url, 100)
    with tally.client(fast_user) as client:
        fast = answers(client, "application/json")
    fast_served = len(served)
    with tally.client(slow_user) as client:
        slow = answers(client, "application/vnd.tally+json")
    for request, a, b in zip(REQUESTS, fast, slow, strict=True):
        assert a == b, request
    assert [status for status, _ in fast][:4] == [200, 200, 409, 409]  # the sequence did what it says
    assert fast_served >= 12 and len(served) == fast_served  # only application/json took the fast path


def test_credentials_fastapi_refuses_are_refused_alike(tally: Any) -> None:
    body = {"amount": 1, "reason": "r", "idempotency_key": "anon"}
    with httpx.Client(base_url=tally.url) as anonymous:
        for content_type in ("application/json", "application/vnd.tally+json"):
            for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
                response = anonymous.post(SPEND, json=body, headers={**headers, "Content-Type": content_type})
                assert response.status_code == 401
                assert response.json()["error"]["type"] == "unauthenticated"
                assert response.headers.get("www-authenticate") == ("Bearer" if not headers else None)
