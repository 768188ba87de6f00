"""Property test of the credits ledger: any sequence of purchases, spends, refunds and their replays, run
through Tally's own service functions on a real PostgreSQL database, keeps the ledger's invariants.

Hypothesis drives a state machine with a simple model (each wallet's balance, each order's refunds);
after every step the database must agree with the model and with itself:
- every transaction's entries sum to zero, and every transaction has entries;
- a wallet's balance row equals the sum of its entries, and the ``balance_after`` chain adds up;
- a spend never takes a balance below zero (a refund of coins already spent may: that is the user's debt);
- each Stripe refund is clawed back at most once, and the clawbacks of an order add up to exactly its
  refunded share of the pack, never more than the pack;
- a replay (the same purchase, spend or refund list again) writes nothing and changes no balance;
- a refused spend (too few coins, a key reused for another spend) writes nothing;
- ``tally ledger check`` finds nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, initialize, invariant, rule,
                                 run_state_machine_as_test)
from sqlalchemy import text

from tally.catalog.service import load_catalog
from tally.config import DEFAULT_CATALOG, Settings
from tally.customers.models import User
from tally.db import Database
from tally.errors import Conflict, InsufficientCredits
from tally.ledger import spending
from tally.ledger.check import check_ledger, format_report
from tally.orders.fulfilment import fulfil_paid_order
from tally.orders.models import Order
from tally.orders.refunds import apply_refunds
from tests.tally_harness import fresh_database

T = TypeVar("T")

CATALOG = load_catalog(DEFAULT_CATALOG)
# Every pack in every currency it is sold in: (pack, currency, amount in minor units).
PRICES = [(pack, currency, pack.amount_in(currency)) for pack in CATALOG.packs.values()
          for currency in pack.currencies]
SETTINGS = Settings(TALLY_DATABASE_URL="unused", TALLY_SELLER_NAME="Tally property test")
# Tables a refused or replayed call must leave untouched.
LEDGER_TABLES = ("ledger_transactions", "ledger_entries", "ledger_accounts", "credit_grants", "orders", "invoices")


class Async:
    """One event loop and one database engine for all of Hypothesis' runs (its rules are plain functions)."""

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.db = self.runner.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> Database:
        return Database(url, pool_size=2)

    def __call__(self, awaitable: Awaitable[T]) -> T:
        return self.runner.run(awaitable)  # type: ignore[arg-type]

    def close(self) -> None:
        self.runner.run(self.db.dispose())
        self.runner.close()


@pytest.fixture(scope="module")
def run() -> Iterator[Async]:
    with fresh_database() as url:
        loop = Async(url)
        try:
            yield loop
        finally:
            loop.close()


@dataclass
class PaidOrder:
    id: str
    user: str
    amount: int
    coins: int  # coins + bonus
    refunds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def refunded(self) -> int:
        return sum(r["amount"] for r in self.refunds if r["status"] in ("succeeded", "pending"))


COUNTS = text(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in LEDGER_TABLES)
              + " UNION ALL SELECT user_id, balance FROM wallet_balances WHERE user_id = ANY(:users)")


class LedgerMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self, run: Async) -> None:
        super().__init__()
        self.run = run
        self.db = run.db
        self.users = [f"prop-{uuid.uuid4().hex[:12]}" for _ in range(2)]
        self.balance = dict.fromkeys(self.users, 0)
        self.spends: dict[tuple[str, str], tuple[int, str]] = {}  # (user, key) → (amount, reason)
        self.paid: list[PaidOrder] = []

    # -- helpers ------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per ledger table, and each user's balance."""
        async def go() -> dict[str, int]:
            async with self.db.transaction() as session:
                return dict((await session.execute(COUNTS, {"users": self.users})).all())
        return self.run(go())

    def assert_nothing_written(self, before: dict[str, int]) -> None:
        after = self.counts()
        assert after == before
        for user in self.users:
            assert after.get(user, 0) == self.balance[user]

    # -- rules --------------------------------------------------------------------------------------
    @initialize()
    def create_users(self) -> None:
        async def go() -> None:
            async with self.db.transaction() as session:
                session.add_all([User(id=u, email=f"{u}@example.com") for u in self.users])
        self.run(go())

    @rule(target=orders, user=st.integers(0, 1), price=st.sampled_from(PRICES))
    def buy(self, user: int, price: tuple[Any, str, int]) -> PaidOrder:
        pack, currency, amount = price
        user_id = self.users[user]
        order_id = str(uuid.uuid4())

        async def go() -> None:
            async with self.db.transaction() as session:  # the pending order, as checkout creates it
                session.add(Order(id=order_id, user_id=user_id, pack_id=pack.id, pack_name=pack.name,
                                  amount=amount, currency=currency, coins=pack.coins, bonus=pack.bonus))
            async with self.db.transaction() as session:  # Stripe says paid
                await fulfil_paid_order(session, order_id=order_id, settings=SETTINGS,
                                        payment_intent_id=f"pi_{order_id}")
        self.run(go())
        self.balance[user_id] += pack.total_coins
        order = PaidOrder(order_id, user_id, amount, pack.total_coins)
        self.paid.append(order)
        return order

    @rule(order=orders)
    def replay_purchase(self, order: PaidOrder) -> None:
        before = self.counts()

        async def go() -> None:
            async with self.db.transaction() as session:
                await fulfil_paid_order(session, order_id=order.id, settings=SETTINGS,
                                        payment_intent_id=f"pi_{order.id}")
        self.run(go())
        self.assert_nothing_written(before)

    @rule(user=st.integers(0, 1), amount=st.one_of(st.integers(1, 3000), st.sampled_from([1, 10**12])),
          key=st.sampled_from(["a", "b", "c", "d", "e", "f"]), reason=st.sampled_from(["chat", "image"]))
    def spend(self, user: int, amount: int, key: str, reason: str) -> None:
        user_id = self.users[user]
        before = self.counts()

        async def go() -> spending.Spent:
            return await spending.spend(self.db, user_id=user_id, amount=amount, reason=reason, idempotency_key=key)
        first = self.spends.get((user_id, key))
        if first is not None and first != (amount, reason):
            with pytest.raises(Conflict):
                self.run(go())
            self.assert_nothing_written(before)
        elif first is not None:
            spent = self.run(go())
            assert spent.replayed and spent.amount == amount
            self.assert_nothing_written(before)
        elif amount > self.balance[user_id]:
            with pytest.raises(InsufficientCredits):
                self.run(go())
            self.assert_nothing_written(before)
        else:
            spent = self.run(go())
            self.balance[user_id] -= amount
            self.spends[(user_id, key)] = (amount, reason)
            assert not spent.replayed and spent.balance == self.balance[user_id] >= 0

    @rule(order=orders, share=st.one_of(st.just(1.0), st.just(0.0), st.floats(0.0, 1.0)),
          status=st.sampled_from(["succeeded", "succeeded", "pending", "failed"]))
    def refund(self, order: PaidOrder, share: float, status: str) -> None:
        """A new Stripe refund of part of what is left (all of it, or as little as one minor unit), then its
        ``charge.refunded`` event."""
        left = order.amount - order.refunded
        if left == 0:
            return
        amount = max(1, min(left, round(left * share)))
        order.refunds.append({"id": f"re_{uuid.uuid4().hex[:16]}", "amount": amount, "status": status,
                              "created": len(order.refunds), "currency": "usd"})
        clawed_before = order.coins * (order.refunded - (amount if status != "failed" else 0)) // order.amount
        self._apply_refunds(order)
        taken = order.coins * order.refunded // order.amount - clawed_before
        self.balance[order.user] -= taken

    @rule(order=orders)
    def replay_refunds(self, order: PaidOrder) -> None:
        before = self.counts()
        self._apply_refunds(order)
        self.assert_nothing_written(before)

    def _apply_refunds(self, order: PaidOrder) -> None:
        async def go() -> Order:
            async with self.db.transaction() as session:
                return await apply_refunds(session, order_id=order.id, refunds=list(order.refunds))
        row = self.run(go())
        assert row.amount_refunded == order.refunded
        assert row.coins_clawed_back == order.coins * order.refunded // order.amount <= order.coins
        assert row.status == ("refunded" if order.refunded == order.amount else "paid")

    # -- invariants ---------------------------------------------------------------------------------
    @invariant()
    def database_agrees_with_itself_and_the_model(self) -> None:
        async def go() -> tuple[list[Any], list[Any]]:
            async with self.db.transaction() as session:
                await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
                broken = (await session.execute(INVARIANTS)).all()
                wallets = (await session.execute(WALLETS, {"users": self.users})).all()
                return broken, wallets
        broken, wallets = self.run(go())
        assert broken == []
        assert {user: balance for user, balance, _ in wallets} == {u: b for u, b in self.balance.items()
                                                                  if u in {w[0] for w in wallets}}
        for user_id, balance, total in wallets:
            assert balance == total, f"wallet of {user_id}: balance {balance}, entries sum to {total}"

    def teardown(self) -> None:
        async def go() -> Any:
            async with self.db.transaction() as session:
                await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
                return await check_ledger(session)
        report = self.run(go())
        assert report.ok, format_report(report)


# Each row is a broken invariant: (what, which row).
INVARIANTS = text("""
    SELECT 'entries do not sum to zero', transaction_id::text FROM ledger_entries
    GROUP BY transaction_id HAVING sum(amount) <> 0
    UNION ALL
    SELECT 'transaction without entries', reference FROM ledger_transactions t
    WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)
    UNION ALL
    SELECT 'balance_after chain broken', id::text FROM (
        SELECT e.id, e.balance_after, e.amount,
               COALESCE(lag(e.balance_after) OVER (PARTITION BY e.account_id ORDER BY e.id), 0) AS previous
        FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet') w
    WHERE balance_after IS DISTINCT FROM previous + amount
    UNION ALL
    SELECT 'spend below zero', id::text FROM ledger_entries WHERE kind = 'spend' AND balance_after < 0
    UNION ALL
    SELECT 'refund clawed back twice', reference FROM ledger_transactions WHERE kind = 'refund'
    GROUP BY reference HAVING count(*) > 1""")
WALLETS = text("""
    SELECT b.user_id, b.balance, COALESCE(sum(e.amount), 0) AS total
    FROM wallet_balances b LEFT JOIN ledger_entries e ON e.account_id = b.account_id
    WHERE b.user_id = ANY(:users) GROUP BY b.user_id, b.balance""")


def test_any_sequence_keeps_the_ledger_invariants(run: Async) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(run),
        settings=settings(max_examples=15, stateful_step_count=15, derandomize=True, database=None,
                          deadline=None, suppress_health_check=[HealthCheck.too_slow]))
