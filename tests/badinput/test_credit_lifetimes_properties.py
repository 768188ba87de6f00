"""Property test of credits with lifetimes: any sequence of paid, subscription and promotional grants (expiring
or not, rolling over or not), spends, holds, captures, releases, adjustments, refunds and disputes, with a clock
that moves forward in jumps while the worker's expiry runs, keeps every invariant of ``tally ledger check``
(grants against balances and entries, holds, captures, expiries, reversals) and ``available = balance − held``.

It also holds the ledger to its promises, each step against what the wallet showed just before:
- a spend or a hold succeeds exactly when it is at most what the wallet can spend, and is then taken;
- a capture or a release succeeds exactly once per hold, and never after the hold's time is up;
- a refund or a dispute takes back exactly its credits, even below zero, and a won dispute gives them back.
Everything runs through the ledger's public API on a real PostgreSQL database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import text

from tally.customers.models import User
from tally.errors import Conflict, InsufficientCredits
from tally.ledger import credits, expiry, references, spending
from tally.ledger.check import check_ledger, format_report
from tally.ledger.posting import Paid
from tally.ledger.service import BalanceView, balance_view
from tests.badinput.test_ledger_properties import Async
from tests.tally_harness import fresh_database

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def run() -> Iterator[Async]:
    with fresh_database() as url:
        loop = Async(url)
        try:
            yield loop
        finally:
            loop.close()


def price_of(credits: int) -> Paid:
    """A price that is no whole number of cents per credit, so that the money outstanding is a fraction
    (``tally ledger check``'s money_outstanding_mismatch runs after each example)."""
    return Paid(7 * credits // 3 + 1, "usd")


@dataclass
class Payment:
    reference: str  # the ledger transaction that granted the credits
    credits: int
    taken: int = 0  # taken back by refunds and disputes so far


@dataclass
class OpenHold:
    id: str
    amount: int
    expires_at: datetime
    ended: bool = False


class LifetimesMachine(RuleBasedStateMachine):
    payments = Bundle("payments")
    holds = Bundle("holds")

    def __init__(self, run: Async) -> None:
        super().__init__()
        self.run = run
        self.db = run.db
        self.user = f"life-{uuid.uuid4().hex[:12]}"
        self.subscription = f"sub_{uuid.uuid4().hex[:12]}"
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.period_end: datetime | None = None

    # -- helpers ------------------------------------------------------------------------------------
    def in_session(self, work: Any) -> Any:
        async def go() -> Any:
            async with self.db.transaction() as session:
                return await work(session)
        return self.run(go())

    def wallet(self) -> BalanceView:
        return self.in_session(lambda session: balance_view(session, self.user, self.now))

    def expires(self, days: int | None) -> datetime | None:
        return None if days is None else self.now + days * DAY

    # -- grants -------------------------------------------------------------------------------------
    @initialize(target=payments, amount=st.integers(1, 3000))
    def first_purchase(self, amount: int) -> Payment:
        async def go(session: Any) -> Any:
            session.add(User(id=self.user, email=f"{self.user}@example.com"))
            await session.flush()
            return await credits.grant_subscription(session, user_id=self.user, invoice_id=f"in_{uuid.uuid4().hex}",
                                                    credits=amount, description="a paid grant",
                                                    subscription_id=self.subscription, paid=price_of(amount))
        movement = self.in_session(go)
        return Payment(self._reference_of(movement.transaction_id), amount)

    def _reference_of(self, transaction_id: int) -> str:
        async def go(session: Any) -> str:
            return str((await session.execute(text("SELECT reference FROM ledger_transactions WHERE id = :id"),
                                              {"id": transaction_id})).scalar_one())
        return self.in_session(go)

    @rule(target=payments, amount=st.integers(1, 3000), days=st.one_of(st.none(), st.integers(1, 60)))
    def paid_grant(self, amount: int, days: int | None) -> Payment:
        invoice = f"in_{uuid.uuid4().hex}"
        self.in_session(lambda session: credits.grant_subscription(
            session, user_id=self.user, invoice_id=invoice, credits=amount, description="a paid grant",
            subscription_id=self.subscription, paid=price_of(amount), expires_at=self.expires(days)))
        return Payment(references.invoice_grant(invoice), amount)

    @rule(amount=st.integers(1, 1000), days=st.one_of(st.none(), st.integers(1, 30)))
    def promotional_grant(self, amount: int, days: int | None) -> None:
        before = self.wallet()
        self.in_session(lambda session: credits.grant_promotion(
            session, user_id=self.user, amount=amount, reason="promo", key=uuid.uuid4().hex,
            expires_at=self.expires(days)))
        assert self.wallet().balance == before.balance + amount

    @rule(target=payments, allowance=st.integers(1, 2000), cap=st.integers(0, 500))
    def renew_subscription(self, allowance: int, cap: int) -> Payment:
        """A new period: the clock reaches the period's end, which closes it (carry-over up to the cap), then the
        next period's allowance is granted, lapsing at its end."""
        if self.period_end is not None:
            self.now = max(self.now, self.period_end)
        start, end = self.now, self.now + 30 * DAY
        self.period_end = end
        invoice = f"in_{uuid.uuid4().hex}"

        async def go(session: Any) -> Any:
            await expiry.close_subscription_period(session, user_id=self.user, subscription_id=self.subscription,
                                                   period_end=int(start.timestamp()), next_period_end=int(end.timestamp()))
            return await credits.grant_subscription(session, user_id=self.user, invoice_id=invoice, credits=allowance,
                                                    description="allowance", subscription_id=self.subscription,
                                                    paid=price_of(allowance), expires_at=end,
                                                    rollover_cap=cap or None)
        self.in_session(go)
        return Payment(references.invoice_grant(invoice), allowance)

    # -- debits -------------------------------------------------------------------------------------
    @rule(amount=st.integers(1, 2500), key=st.sampled_from(["a", "b", "c", "d"]))
    def spend(self, amount: int, key: str) -> None:
        before = self.wallet()
        fresh_key = f"{key}-{uuid.uuid4().hex[:6]}"
        try:
            spent = self.run(spending.spend(self.db, user_id=self.user, amount=amount, reason="use",
                                            idempotency_key=fresh_key, now=self.now))
        except InsufficientCredits:
            assert amount > before.available
            assert self.wallet().balance == before.balance
        else:
            assert amount <= before.available and not spent.replayed
            assert spent.balance == before.balance - amount
            again = self.run(spending.spend(self.db, user_id=self.user, amount=amount, reason="use",
                                            idempotency_key=fresh_key, now=self.now))
            assert again.replayed and again.transaction_id == spent.transaction_id

    @rule(target=holds, amount=st.integers(1, 2000), seconds=st.integers(1, 10 * 86400))
    def hold(self, amount: int, seconds: int) -> OpenHold:
        before = self.wallet()
        try:
            found, available, replayed = self.run(spending.hold(
                self.db, user_id=self.user, amount=amount, idempotency_key=uuid.uuid4().hex,
                expires_in_seconds=min(seconds, spending.MAX_HOLD_SECONDS), now=self.now))
        except InsufficientCredits:
            assert amount > before.available
            return OpenHold("hold_none", amount, self.now, ended=True)
        assert amount <= before.available and not replayed and available == before.available - amount
        return OpenHold(found.id, amount, found.expires_at)

    @rule(hold=holds, share=st.floats(0.0, 1.0))
    def capture(self, hold: OpenHold, share: float) -> None:
        if hold.id == "hold_none":
            return
        amount = max(1, round(hold.amount * share))
        before = self.wallet()
        try:
            found, balance, _ = self.run(spending.capture(self.db, user_id=self.user, hold_id=hold.id, amount=amount,
                                                         now=self.now))
        except Conflict:
            assert hold.ended or hold.expires_at <= self.now
            hold.ended = True
            return
        assert not hold.ended and hold.expires_at > self.now
        hold.ended = True
        assert found.status == "captured" and found.captured == amount and balance <= before.balance - amount

    @rule(hold=holds)
    def release(self, hold: OpenHold) -> None:
        if hold.id == "hold_none":
            return
        try:
            found, _ = self.run(spending.release(self.db, user_id=self.user, hold_id=hold.id, now=self.now))
        except Conflict:
            assert hold.ended
            return
        assert not hold.ended and found.status == "released"
        hold.ended = True

    @rule(delta=st.integers(-500, 500).filter(bool))
    def adjust(self, delta: int) -> None:
        before = self.wallet()
        try:
            self.in_session(lambda session: credits.adjust(session, user_id=self.user, delta=delta, reason="fix",
                                                           key=uuid.uuid4().hex))
        except InsufficientCredits:
            assert delta < 0 and -delta > before.available
            return
        assert delta > 0 or -delta <= before.available

    # -- reversals ----------------------------------------------------------------------------------
    @rule(payment=payments, share=st.floats(0.0, 1.0))
    def refund(self, payment: Payment, share: float) -> None:
        left = payment.credits - payment.taken
        if left <= 0:
            return
        amount = max(1, round(left * share))
        before = self.wallet()
        self.in_session(lambda session: credits.reverse_refund(
            session, user_id=self.user, refund_id=f"re_{uuid.uuid4().hex}", credits=amount,
            reversed_reference=payment.reference))
        payment.taken += amount
        assert self.wallet().balance == before.balance - amount

    @rule(payment=payments, won=st.booleans())
    def dispute(self, payment: Payment, won: bool) -> None:
        left = payment.credits - payment.taken
        if left <= 0:
            return
        dispute_id = f"dp_{uuid.uuid4().hex}"
        before = self.wallet()

        async def go(session: Any) -> None:
            await credits.withdraw_for_dispute(session, user_id=self.user, dispute_id=dispute_id, credits=left,
                                               reversed_reference=payment.reference)
            # Once each: a second delivery of the same event changes nothing.
            await credits.withdraw_for_dispute(session, user_id=self.user, dispute_id=dispute_id, credits=left,
                                               reversed_reference=payment.reference)
            if won:
                await credits.reinstate_after_dispute(session, user_id=self.user, dispute_id=dispute_id,
                                                      credits=left, reversed_reference=payment.reference)
        self.in_session(go)
        if not won:
            payment.taken += left
        assert self.wallet().balance == before.balance - (0 if won else left)

    # -- time ---------------------------------------------------------------------------------------
    @rule(seconds=st.sampled_from([1, 3600, 86400, 7 * 86400, 31 * 86400]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.run(spending.expire_holds(self.db, now=self.now))
        self.run(expiry.expire_due(self.db, now=self.now))

    # -- invariants ---------------------------------------------------------------------------------
    @invariant()
    def the_wallet_agrees_with_its_grants_holds_and_entries(self) -> None:
        broken = self.in_session(lambda session: session.execute(WALLET_INVARIANTS, {"u": self.user}))
        assert broken.all() == []

    def teardown(self) -> None:
        async def go(session: Any) -> Any:
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            return await check_ledger(session)
        report = self.in_session(go)
        # Grants past their time for the machine's clock may be in the wall clock's future: the one check that
        # reads the wall clock is left to the worker's own tests.
        findings = {k for k in report.totals if k != "grant_not_expired"}
        assert not findings, format_report(report)

    @invariant()
    def available_is_balance_less_held(self) -> None:
        wallet = self.wallet()
        due = self.in_session(lambda session: session.scalar(text(
            "SELECT count(*) FROM credit_grants WHERE user_id = :u AND remaining > 0 AND expires_at <= :now"),
            {"u": self.user, "now": self.now}))
        if due == 0:  # between the clock's jump and the worker's pass, the lapsed grants are not spendable yet
            assert wallet.available == wallet.balance - wallet.held
        assert wallet.held >= 0 and wallet.debt >= 0


# The checks of ``tally ledger check`` that concern one wallet, for this machine's user after every step (the
# whole check runs at the end of each example). Each row is a broken invariant.
WALLET_INVARIANTS = text("""
    WITH w AS (SELECT * FROM wallet_balances WHERE user_id = :u),
    grants AS (SELECT * FROM credit_grants WHERE user_id = :u),
    open_holds AS (SELECT * FROM credit_holds WHERE user_id = :u AND status = 'held'),
    held AS (SELECT u.grant_id, sum(u.amount) AS amount
             FROM open_holds h, unnest(h.grant_ids, h.grant_amounts) AS u(grant_id, amount) GROUP BY u.grant_id),
    moved AS (SELECT e.grant_id, sum(e.amount) AS amount FROM ledger_entries e JOIN w ON w.account_id = e.account_id
              WHERE e.grant_id IS NOT NULL GROUP BY e.grant_id)
    SELECT 'balance is not grants + held - debt', w.balance::text FROM w
    WHERE w.balance <> (SELECT COALESCE(sum(remaining), 0) FROM grants) + w.held - w.debt
    UNION ALL
    SELECT 'held is not the open holds', w.held::text FROM w
    WHERE w.held <> (SELECT COALESCE(sum(amount), 0) FROM open_holds)
    UNION ALL
    SELECT 'balance is not the entries', w.balance::text FROM w
    WHERE w.balance <> (SELECT COALESCE(sum(amount), 0) FROM ledger_entries e WHERE e.account_id = w.account_id)
    UNION ALL
    SELECT 'grant out of bounds or off its entries', g.id::text FROM grants g
    LEFT JOIN held h ON h.grant_id = g.id LEFT JOIN moved m ON m.grant_id = g.id
    WHERE g.remaining < 0 OR g.remaining > g.amount
       OR g.remaining + COALESCE(h.amount, 0) <> COALESCE(m.amount, 0)
    UNION ALL
    SELECT 'unbalanced transaction', t.id::text FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
    WHERE t.user_id = :u GROUP BY t.id HAVING sum(e.amount) <> 0""")


@pytest.mark.timeout(600)
def test_any_sequence_keeps_every_invariant(run: Async) -> None:
    run_state_machine_as_test(
        lambda: LifetimesMachine(run),
        settings=settings(max_examples=15, stateful_step_count=20, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
