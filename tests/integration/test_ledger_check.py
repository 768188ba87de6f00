"""``tally ledger check`` against real data (purchases paid on the sandbox, a spend, a partial refund, an unpaid
order), then against copies of that database corrupted one way each, with the guarding triggers and foreign
keys switched off for the corrupting session only: every kind of finding is seen, and only the expected ones."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import uuid
from fractions import Fraction
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tally.db import Database, libpq_url
from tally.ledger import service as ledger
from tally.ledger.check import KINDS, Report, run_check
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, checkout, new_user, pay, sdk, wait_until
from tests.tally_harness import TallyServer, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

ROOT = Path(__file__).resolve().parents[2]


def q(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(query, args or None)
        return cur.fetchall() if cur.description else []


def check(url: str) -> Report:
    async def run() -> Report:
        db = Database(url, pool_size=1)
        try:
            return await run_check(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def clean_url() -> Iterator[str]:
    """Two users' real purchases, a spend, a hold captured in part and one still open, a partial refund, and a
    checkout never paid."""
    with fresh_database() as url:
        with TallyServer(url) as tally:
            ada, bob = new_user(), new_user()
            for user, packs in ((ada, ["plus", "starter"]), (bob, ["pro"])):
                with tally.client(user) as client:
                    for pack in packs:
                        started = checkout(client, pack)
                        assert pay(tally, started["session_id"]).status_code == 303
                        wait_until(lambda: client.get(f"/v1/orders/{started['order_id']}").json()["status"]
                                   == "paid", "paid")
            with tally.client(ada) as client:
                spent = client.post("/v1/credits/spend", json={"amount": 300, "reason": "export",
                                                               "idempotency_key": "k1"})
                assert spent.status_code == 200, spent.text
                held = client.post("/v1/credits/holds", json={"amount": 50, "idempotency_key": "h1"}).json()
                captured = client.post(f"/v1/credits/holds/{held['id']}/capture", json={"amount": 30})
                assert captured.json()["status"] == "captured", captured.text
                assert client.post("/v1/credits/holds", json={"amount": 20, "idempotency_key": "h2"}).status_code == 201
                checkout(client, "starter")  # stays pending
            with tally.client(bob) as client:
                pi = q(url, "SELECT stripe_payment_intent_id FROM orders WHERE user_id = %s", bob)[0][0]
                sdk(tally).v1.refunds.create(params={"payment_intent": pi, "amount": 1000})
                wait_until(lambda: q(url, "SELECT count(*) FROM ledger_transactions WHERE kind = 'refund'")
                           == [(1,)], "the refund clawed back")
        yield url


@contextmanager
def copy_of(url: str) -> Iterator[str]:
    """A copy of the database (PostgreSQL's template copy), dropped afterwards."""
    parsed = make_url(url)
    admin = libpq_url(parsed.set(database="postgres").render_as_string(hide_password=False))
    name = f"tally_check_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                      "pg_backend_pid()", (parsed.database,))
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def corrupt(url: str, *statements: str) -> None:
    """Run ``statements`` as a replica would: no triggers (append-only, balanced) and no foreign keys."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def test_real_purchases_spends_and_refunds_pass(clean_url: str) -> None:
    report = check(clean_url)
    assert report.ok, report.as_json()
    assert report.checked["orders"] == 4 and report.checked["invoices"] == 3
    assert report.checked["ledger_transactions"] == 6  # 3 purchases, 1 spend, 1 capture, 1 refund
    assert report.checked["credit_holds"] == 2


def test_the_money_paid_for_unused_credits_follows_every_draw(clean_url: str) -> None:
    """Ada's Plus pack: its bonus went first, then 200 of its 1 000 coins to the spend, 30 to the capture and 20
    to the open hold (the released 20 came back); her Starter pack is untouched. Bob's Pro pack lost what his
    refund took back."""
    net = dict(q(clean_url, "SELECT pack_id, amount - amount_tax FROM orders WHERE status IN ('paid', 'refunded')"))
    grants = dict(q(clean_url, """SELECT o.pack_id, g.paid_amount FROM credit_grants g
                                  JOIN ledger_transactions t ON t.id = g.transaction_id JOIN orders o ON o.id = t.order_id
                                  WHERE g.category = 'paid'"""))
    assert grants == net  # each pack's coins carry what the order cost, net of tax
    (bob_left,), = q(clean_url, "SELECT remaining FROM credit_grants g JOIN orders o ON o.user_id = g.user_id "
                                "WHERE o.pack_id = 'pro' AND g.category = 'paid'")
    worth = Fraction(net["plus"] * 750, 1000) + net["starter"] + Fraction(net["pro"] * bob_left, 2500)

    async def shown() -> dict[str, int]:
        db = Database(clean_url, pool_size=1)
        try:
            async with db.transaction() as session:
                return (await ledger.outstanding(session)).paid_money
        finally:
            await db.dispose()

    assert asyncio.run(shown()) == {"usd": round(worth)}


ADA_PURCHASE = "(SELECT id FROM ledger_transactions WHERE kind = 'purchase' ORDER BY id LIMIT 1)"
BOB = "(SELECT user_id FROM orders WHERE pack_id = 'pro')"
PAID_ORDER = "(SELECT id FROM orders WHERE status = 'paid' ORDER BY created_at LIMIT 1)"
ADA_FIRST_WALLET_ENTRY = """(SELECT e.id FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
                            WHERE a.kind = 'wallet' ORDER BY e.id LIMIT 1)"""

CORRUPTIONS: dict[str, tuple[list[str], set[str]]] = {
    "an entry inserted on one side only": (
        [f"""INSERT INTO ledger_entries (transaction_id, account_id, amount, kind)
             SELECT {ADA_PURCHASE}, id, 7, 'coins' FROM ledger_accounts WHERE code = 'system:bonuses'"""],
        {"unbalanced_transaction"}),
    "a transaction header without entries": (
        [f"INSERT INTO ledger_transactions (reference, kind, user_id) VALUES ('spend:x:y', 'spend', {BOB})"],
        {"transaction_without_entries"}),
    "a balance edited": (
        [f"UPDATE wallet_balances SET balance = balance + 1 WHERE user_id = {BOB}"],
        {"balance_mismatch", "grants_balance_mismatch"}),
    "a balance_after edited": (
        [f"UPDATE ledger_entries SET balance_after = balance_after + 1 WHERE id = {ADA_FIRST_WALLET_ENTRY}"],
        {"balance_after_chain"}),
    "a wallet entry and its system twin deleted": (
        [f"""DELETE FROM ledger_entries WHERE transaction_id = (SELECT transaction_id FROM ledger_entries
                                                               WHERE id = {ADA_FIRST_WALLET_ENTRY})
             AND kind = 'coins'"""],
        {"balance_after_chain", "balance_mismatch", "credit_amount_mismatch", "grant_entries_mismatch"}),
    "a balance row deleted": (
        [f"DELETE FROM wallet_balances WHERE user_id = {BOB}"],
        {"wallet_without_balance"}),
    "a balance row with no account": (
        ["INSERT INTO users (id) VALUES ('ghost')",
         "INSERT INTO wallet_balances (user_id, account_id, balance) VALUES ('ghost', 999999, 0)"],
        {"balance_without_wallet"}),
    "a transaction moved to another user": (
        [f"UPDATE ledger_transactions SET user_id = {BOB} WHERE id = {ADA_PURCHASE}"],
        {"entry_on_foreign_wallet"}),
    "an invoice number skipped": (
        ["UPDATE invoice_counters SET last_number = last_number + 1"],
        {"invoice_number_gap"}),
    "an invoice deleted": (
        ["DELETE FROM invoices WHERE sequence = 2"],
        {"invoice_number_gap", "paid_order_without_invoice"}),
    "an invoice renumbered": (
        ["UPDATE invoices SET number = 'INV-1999-000001' WHERE sequence = 1"],
        {"invoice_number_gap"}),
    "an unpaid order marked paid": (
        ["UPDATE orders SET status = 'paid' WHERE status = 'pending'"],
        {"paid_order_without_credit", "paid_order_without_invoice"}),
    "a paid order set back to pending": (
        [f"UPDATE orders SET status = 'pending' WHERE id = {PAID_ORDER}"],
        {"credit_without_paid_order", "invoice_without_paid_order"}),
    "an order's bonus edited": (
        [f"UPDATE orders SET bonus = bonus + 1 WHERE id = {PAID_ORDER}"],
        {"credit_amount_mismatch"}),
    "an invoice amount edited": (
        ["UPDATE invoices SET amount = amount + 1 WHERE sequence = 1"],
        {"invoice_amount_mismatch"}),
    "a clawback counter edited": (
        [f"UPDATE orders SET coins_clawed_back = 5 WHERE id = {PAID_ORDER}"],
        {"clawback_mismatch"}),
    "a grant's remaining edited": (
        [f"UPDATE credit_grants SET remaining = remaining - 1 WHERE user_id = {BOB}"],
        {"grants_balance_mismatch", "grant_entries_mismatch", "money_outstanding_mismatch"}),
    "a paid grant's price edited": (
        [f"UPDATE credit_grants SET paid_amount = paid_amount + 1 WHERE user_id = {BOB}"],
        {"money_outstanding_mismatch"}),
    "a grant's remaining above its amount": (
        ["ALTER TABLE credit_grants DROP CONSTRAINT ck_credit_grants_remaining_within",
         f"UPDATE credit_grants SET remaining = amount + 1 WHERE user_id = {BOB}"],
        {"grant_out_of_bounds", "grants_balance_mismatch", "grant_entries_mismatch", "money_outstanding_mismatch"}),
    "a wallet's held and debt raised together": (
        [f"UPDATE wallet_balances SET held = held + 1, debt = debt + 1 WHERE user_id = {BOB}"],
        {"held_mismatch"}),
    "holds above the balance": (
        [f"UPDATE wallet_balances SET held = balance + debt + 1 WHERE user_id = {BOB}"],
        {"held_mismatch", "holds_beyond_balance", "grants_balance_mismatch"}),
    "a captured hold's amount edited": (
        ["UPDATE credit_holds SET captured = captured + 1 WHERE status = 'captured'"],
        {"hold_capture_mismatch"}),
    "a grant past its expiry never expired": (
        [f"UPDATE credit_grants SET expires_at = now() - interval '2 hours' WHERE user_id = {BOB}"],
        {"grant_not_expired"}),
    "a spend relabelled as an expiry": (
        ["UPDATE ledger_transactions SET kind = 'expiry' WHERE kind = 'spend' AND reference LIKE 'spend:%'"],
        {"expiry_mismatch"}),
    "a dispute that took credits without a transaction": (
        [f"""INSERT INTO disputes (id, user_id, charge_id, amount, currency, status, credits_withdrawn,
                                   stripe_created)
             VALUES ('dp_test_1', {BOB}, 'ch_test_1', 1000, 'usd', 'lost', 5, 0)"""],
        {"dispute_mismatch"}),
    "a subscription invoice's clawback counter edited": (
        [f"""INSERT INTO subscription_invoices (id, user_id, subscription_id, amount_paid, currency,
                                                credits_clawed_back)
             VALUES ('in_test_2', {BOB}, 'sub_test_2', 900, 'usd', 5)"""],
        {"invoice_refund_mismatch"}),
    "a subscription invoice pointing nowhere": (
        [f"""INSERT INTO subscription_invoices (id, user_id, subscription_id, amount_paid, currency,
                                                ledger_transaction_id)
             VALUES ('in_test_1', {BOB}, 'sub_test_1', 900, 'usd', 999999)"""],
        {"subscription_invoice_without_credit"}),
}


def test_every_kind_of_finding_is_covered() -> None:
    assert set().union(*(kinds for _, kinds in CORRUPTIONS.values())) == set(KINDS)


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_each_corruption_is_found(clean_url: str, case: str) -> None:
    statements, expected = CORRUPTIONS[case]
    with copy_of(clean_url) as url:
        corrupt(url, *statements)
        report = check(url)
    assert report.kinds() == expected, report.as_json()
    assert all(f.subject and f.detail for f in report.findings)
    assert sum(report.totals.values()) >= len(report.findings) > 0


def test_command_exits_non_zero_and_names_the_finding(clean_url: str) -> None:
    env = {**os.environ, "TALLY_DATABASE_URL": clean_url, "TALLY_DATA_DIR": tempfile.mkdtemp(prefix="tally-check-")}
    ok = subprocess.run([str(ROOT / ".venv" / "bin" / "tally"), "ledger", "check"], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ledger check: OK"), ok.stdout + ok.stderr
    with copy_of(clean_url) as url:
        corrupt(url, f"UPDATE wallet_balances SET balance = balance - 3 WHERE user_id = {BOB}")
        found = subprocess.run([str(ROOT / ".venv" / "bin" / "tally"), "ledger", "check", "--json"],
                               env={**env, "TALLY_DATABASE_URL": url}, cwd=ROOT, capture_output=True, text=True,
                               timeout=60)
    assert found.returncode == 1, found.stdout + found.stderr
    assert '"balance_mismatch": 1' in found.stdout and "entries sum to" in found.stdout
