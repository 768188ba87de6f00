"""Migration 0009 on a database holding today's ledger: every wallet balance becomes one never-expiring paid
grant (a negative one becomes debt), and ``tally ledger check`` passes before and after; the wallets then
spend, hold and get paid into as any other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tally.db import Database, libpq_url
from tally.ledger import credits, spending
from tally.ledger.check import CHECKS, COUNTED, Report, check_ledger, run_check
from tally.migrate import upgrade
from tests.tally_harness import external_admin_url, external_postgres_reachable

NEW_IN_0009 = ("credit_grants", "credit_holds", "disputes", "credits_clawed_back", "grant_id", "held", "debt")

TODAY = """
INSERT INTO users (id) VALUES ('u1'), ('u2'), ('u3');
INSERT INTO ledger_accounts (code, kind, user_id) VALUES ('wallet:u1', 'wallet', 'u1'), ('wallet:u2', 'wallet', 'u2'),
                                                         ('wallet:u3', 'wallet', 'u3');
INSERT INTO wallet_balances (user_id, account_id, balance)
SELECT user_id, id, CASE user_id WHEN 'u1' THEN 800 WHEN 'u2' THEN -400 ELSE 0 END
FROM ledger_accounts WHERE kind = 'wallet';
INSERT INTO ledger_transactions (reference, kind, user_id) VALUES
    ('invoice:in_1:grant', 'subscription', 'u1'), ('spend:u1:k', 'spend', 'u1'),
    ('invoice:in_2:grant', 'subscription', 'u2'), ('spend:u2:k', 'spend', 'u2'), ('refund:re_2', 'refund', 'u2');
INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after)
SELECT t.id, a.id, e.amount, e.kind, e.balance_after
FROM (VALUES (1, 'invoice:in_1:grant', 'wallet:u1', 1100, 'subscription', 1100),
             (2, 'invoice:in_1:grant', 'system:purchases', -1100, 'subscription', NULL),
             (3, 'spend:u1:k', 'wallet:u1', -300, 'spend', 800),
             (4, 'spend:u1:k', 'system:spending', 300, 'spend', NULL),
             (5, 'invoice:in_2:grant', 'wallet:u2', 500, 'subscription', 500),
             (6, 'invoice:in_2:grant', 'system:purchases', -500, 'subscription', NULL),
             (7, 'spend:u2:k', 'wallet:u2', -400, 'spend', 100),
             (8, 'spend:u2:k', 'system:spending', 400, 'spend', NULL),
             (9, 'refund:re_2', 'wallet:u2', -500, 'clawback', -400),
             (10, 'refund:re_2', 'system:refunds', 500, 'clawback', NULL)
     ) AS e(ord, reference, code, amount, kind, balance_after)
JOIN ledger_transactions t ON t.reference = e.reference JOIN ledger_accounts a ON a.code = e.code
ORDER BY e.ord;
"""


@pytest.fixture
def database_at_0008() -> Iterator[str]:
    if not external_postgres_reachable():
        pytest.skip("needs a PostgreSQL server to create a database at an old revision")
    admin = external_admin_url()
    name = f"tally_migration_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade(url, "0008")
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def old_checks(url: str) -> Report:
    """The checks that existed before 0009 (the others read its tables)."""
    async def run() -> Report:
        db = Database(url, pool_size=1)
        try:
            async with db.transaction() as session:
                return await check_ledger(
                    session, checks=[(k, q) for k, q in CHECKS if not any(word in q for word in NEW_IN_0009)],
                    counted=[t for t in COUNTED if t not in NEW_IN_0009])
        finally:
            await db.dispose()
    return asyncio.run(run())


def test_balances_become_grants_and_the_ledger_still_checks(database_at_0008: str) -> None:
    url = database_at_0008
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(TODAY)
    before = old_checks(url)
    assert before.ok, before.as_json()

    upgrade(url)

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        grants = conn.execute("SELECT user_id, source, category, amount, remaining, expires_at FROM credit_grants "
                              "ORDER BY user_id").fetchall()
        wallets = conn.execute("SELECT user_id, balance, held, debt FROM wallet_balances ORDER BY user_id").fetchall()
    assert grants == [("u1", "adjustment", "paid", 800, 800, None)]
    assert wallets == [("u1", 800, 0, 0), ("u2", -400, 0, 400), ("u3", 0, 0, 0)]

    async def afterwards() -> tuple[Report, int, int]:
        db = Database(url, pool_size=2)
        try:
            first = await run_check(db)
            spent = await spending.spend(db, user_id="u1", amount=300, reason="after", idempotency_key="after")
            async with db.transaction() as session:
                paid = await credits.grant_subscription(session, user_id="u2", invoice_id="in_3", credits=500,
                                                        description="renewal", subscription_id="sub_2", paid=None)
            assert first.ok, first.as_json()
            return await run_check(db), spent.balance, paid.balance
        finally:
            await db.dispose()

    report, u1_balance, u2_balance = asyncio.run(afterwards())
    assert report.ok, report.as_json()
    assert (u1_balance, u2_balance) == (500, 100)  # u2's new grant paid its 400 of debt first
