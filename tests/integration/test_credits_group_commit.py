"""Group commit of spends and holds (``tally.ledger.group_commit``) on a real PostgreSQL, without HTTP: requests
that arrive together share one statement, yet each keeps its own ledger transaction and its own answer; one
user's requests are serialised by the wallet lock, a duplicate idempotency key inside a group is a replay, a
short wallet fails only its own request, and groups taking many users' locks at once never deadlock."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from tally.db import Database, libpq_url
from tally.errors import Conflict, InsufficientCredits, InvalidRequest, NotFound
from tally.ledger import credits, group_commit, spending
from tally.ledger.check import run_check
from tally.ledger.group_commit import GroupCommit, LedgerGroups


def new_users(database_url: str, count: int) -> list[str]:
    users = [f"gc-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.cursor().executemany("INSERT INTO users (id) VALUES (%s)", [(u,) for u in users])
    return users


async def fund(db: Database, users: list[str], amount: int) -> None:
    async with db.transaction() as session:
        for user in users:
            await credits.adjust(session, user_id=user, delta=amount, reason="test funds", key="fund")


def statements_of(groups: GroupCommit[Any]) -> list[int]:
    """Counts the items of each statement ``groups`` sends from now on."""
    sizes: list[int] = []
    real = groups.run

    async def counted(conn: Any, items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return await real(conn, items)

    groups.run = counted  # type: ignore[method-assign]
    return sizes


def run(database_url: str, body: Callable[[Database, LedgerGroups], Awaitable[Any]], pool_size: int = 4) -> Any:
    async def main() -> Any:
        db = Database(database_url, pool_size=pool_size)
        try:
            return await asyncio.wait_for(body(db, LedgerGroups(db)), 60)
        finally:
            await db.dispose()

    return asyncio.run(main())


def wallet(database_url: str, user: str) -> tuple[int, int]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("SELECT balance, held FROM wallet_balances WHERE user_id = %s", (user,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def spend_transactions(database_url: str, user: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_transactions WHERE user_id = %s AND kind = 'spend'",
                           (user,)).fetchone()
    assert row is not None
    return int(row[0])


def test_spends_of_many_users_share_one_statement_each_with_its_own_transaction(database_url: str) -> None:
    users = new_users(database_url, 40)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, users, 100)
        sizes = statements_of(groups.spends)
        spent = await asyncio.gather(*(group_commit.spend(groups, user_id=u, amount=7, reason="many",
                                                          idempotency_key="k1") for u in users))
        assert sizes == [40]  # all arrived together: one statement, one commit
        return spent

    spent = run(database_url, body)
    assert len({s.transaction_id for s in spent}) == 40
    assert all(s.balance == 93 and s.available == 93 and not s.replayed for s in spent)
    assert all(wallet(database_url, u) == (93, 0) and spend_transactions(database_url, u) == 1 for u in users)


def test_one_users_spends_in_a_group_take_turns_and_stop_at_the_balance(database_url: str) -> None:
    [user] = new_users(database_url, 1)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, [user], 100)
        sizes = statements_of(groups.spends)
        answers = await asyncio.gather(*(group_commit.spend(groups, user_id=user, amount=10, reason="hot",
                                                            idempotency_key=f"hot-{i}") for i in range(15)),
                                       return_exceptions=True)
        assert sum(sizes) == 15 and len(sizes) < 15  # shared statements
        return answers

    answers = run(database_url, body)
    spent = [a for a in answers if not isinstance(a, BaseException)]
    refused = [a for a in answers if isinstance(a, BaseException)]
    assert len(spent) == 10 and len(refused) == 5
    assert all(isinstance(e, InsufficientCredits) for e in refused)
    assert sorted(s.balance for s in spent) == list(range(0, 100, 10))  # every step once: no two took the same
    assert wallet(database_url, user) == (0, 0) and spend_transactions(database_url, user) == 10


def test_a_repeated_idempotency_key_inside_one_group_spends_once(database_url: str) -> None:
    [user] = new_users(database_url, 1)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, [user], 100)
        sizes = statements_of(groups.spends)
        same = [group_commit.spend(groups, user_id=user, amount=30, reason="sword", idempotency_key="dup")
                for _ in range(4)]
        different = group_commit.spend(groups, user_id=user, amount=31, reason="sword", idempotency_key="dup")
        answers = await asyncio.gather(*same, different, return_exceptions=True)
        assert sizes == [5]
        return answers

    *same, different = run(database_url, body)
    assert [s.replayed for s in same] == [False, True, True, True]  # the first to arrive spends
    assert len({s.transaction_id for s in same}) == 1 and {s.balance for s in same} == {70}
    assert isinstance(different, Conflict) and different.param == "idempotency_key"
    assert wallet(database_url, user) == (70, 0) and spend_transactions(database_url, user) == 1


def test_a_short_wallet_fails_only_its_own_spend(database_url: str) -> None:
    rich, poor, never_credited = new_users(database_url, 3)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, [rich], 50)
        await fund(db, [poor], 5)
        sizes = statements_of(groups.spends)
        answers = await asyncio.gather(*(group_commit.spend(groups, user_id=u, amount=10, reason="r",
                                                            idempotency_key="one")
                                         for u in (rich, poor, never_credited)), return_exceptions=True)
        assert sizes == [3]
        return answers

    spent, short, nothing = run(database_url, body)
    assert spent.balance == 40
    assert isinstance(short, InsufficientCredits) and short.body()["error"]["available"] == 5
    assert isinstance(nothing, InsufficientCredits) and nothing.body()["error"]["available"] == 0
    assert wallet(database_url, poor) == (5, 0) and spend_transactions(database_url, poor) == 0


def test_an_error_in_one_request_reaches_only_that_request(database_url: str) -> None:
    users = new_users(database_url, 3)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, users, 50)
        sizes = statements_of(groups.spends)
        reasons = ["fine", "x" * 5000, "fine too"]  # longer than a ledger description may be: the statement fails
        answers = await asyncio.gather(*(group_commit.spend(groups, user_id=u, amount=1, reason=r,
                                                            idempotency_key="e") for u, r in zip(users, reasons)),
                                       return_exceptions=True)
        assert sizes[0] == 3 and sorted(sizes[1:]) == [1, 1, 1]  # the group, then each on its own
        return answers

    first, failed, third = run(database_url, body)
    assert first.balance == 49 and third.balance == 49
    assert isinstance(failed, psycopg.errors.StringDataRightTruncation)
    assert wallet(database_url, users[1]) == (50, 0)


def test_groups_locking_the_same_users_in_opposite_orders_never_deadlock(database_url: str, caplog: Any) -> None:
    users = new_users(database_url, 30)

    async def body(db: Database, groups: LedgerGroups) -> None:
        await fund(db, users, 1000)
        other = LedgerGroups(db)  # another API process: its own groups, sent concurrently with ours
        for round_ in range(5):
            await asyncio.gather(
                *(group_commit.spend(groups, user_id=u, amount=1, reason="a", idempotency_key=f"a{round_}")
                  for u in users),
                *(group_commit.spend(other, user_id=u, amount=1, reason="b", idempotency_key=f"b{round_}")
                  for u in reversed(users)))

    with caplog.at_level(logging.WARNING, logger="tally.ledger"):
        run(database_url, body)
    # A deadlock fails a whole group, which is then redone one by one (and so would still end well): only the
    # warning tells.
    assert not [r for r in caplog.records if "together failed" in r.getMessage()]
    assert all(wallet(database_url, u) == (990, 0) for u in users)


def test_groups_of_different_users_and_single_spends_never_deadlock(database_url: str, caplog: Any) -> None:
    """A spend writes more than its wallet (its transaction, its entries, the dashboard's counts): groups of
    disjoint users (several API processes) and single spends (``spending.spend``) must still never wait in a
    cycle. (When the counts were upserts into 16 rows chosen by user, this deadlocked every few seconds.)"""
    users = new_users(database_url, 64)

    async def body(db: Database, groups: LedgerGroups) -> None:
        await fund(db, users, 1000)
        processes = [groups, *(LedgerGroups(db) for _ in range(3))]
        for round_ in range(4):
            await asyncio.gather(
                *(group_commit.spend(processes[i % 4], user_id=u, amount=1, reason="g", idempotency_key=f"g{round_}")
                  for i, u in enumerate(users)),
                *(spending.spend(db, user_id=u, amount=1, reason="s", idempotency_key=f"s{round_}")
                  for u in users[::7]))

    with caplog.at_level(logging.WARNING, logger="tally.ledger"):
        run(database_url, body, pool_size=12)
    assert not [r for r in caplog.records if "together failed" in r.getMessage()]
    assert all(wallet(database_url, u) == (1000 - 4 - 4 * (i % 7 == 0), 0) for i, u in enumerate(users))


def test_holds_racing_for_a_balance_that_covers_twenty_of_fifty(database_url: str) -> None:
    [user] = new_users(database_url, 1)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, [user], 200)
        sizes = statements_of(groups.holds)
        answers = await asyncio.gather(*(group_commit.hold(groups, user_id=user, amount=10, idempotency_key=f"h{i}",
                                                           reason="render") for i in range(50)),
                                       return_exceptions=True)
        assert sum(sizes) == 50 and len(sizes) < 50
        return answers

    answers = run(database_url, body)
    held = [a for a in answers if not isinstance(a, BaseException)]
    assert len(held) == 20 and all(isinstance(a, InsufficientCredits) for a in answers if a not in held)
    assert sorted(available for _, available, _ in held) == list(range(0, 200, 10))
    assert all(h.status == "held" and h.amount == 10 and not replayed for h, _, replayed in held)
    assert wallet(database_url, user) == (200, 200)


def test_a_hold_replayed_inside_its_group_answers_the_same_hold(database_url: str) -> None:
    [user] = new_users(database_url, 1)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, [user], 100)
        return await asyncio.gather(*(group_commit.hold(groups, user_id=user, amount=25, idempotency_key="job-1")
                                      for _ in range(3)))

    answers = run(database_url, body)
    assert len({hold.id for hold, _, _ in answers}) == 1
    assert [replayed for _, _, replayed in answers] == [False, True, True]
    assert wallet(database_url, user) == (100, 25)


@pytest.fixture(autouse=True, scope="module")
def ledger_checks_out(database_url: str) -> Any:
    yield

    async def check() -> Any:
        db = Database(database_url, pool_size=1)
        try:
            return await run_check(db)
        finally:
            await db.dispose()

    report = asyncio.run(check())
    assert report.ok, report


def test_captures_share_a_statement_and_each_gets_its_own_answer(database_url: str) -> None:
    users = new_users(database_url, 3)

    async def body(db: Database, groups: LedgerGroups) -> list[Any]:
        await fund(db, users, 100)
        holds = [await group_commit.hold(groups, user_id=u, amount=40, idempotency_key="job") for u in users]
        [first, second, third] = [h.id for h, _, _ in holds]
        sizes = statements_of(groups.captures)
        answers = await asyncio.gather(
            group_commit.capture(groups, user_id=users[0], hold_id=first, amount=15),  # the rest released
            group_commit.capture(groups, user_id=users[0], hold_id=first),  # second capture: loses
            group_commit.capture(groups, user_id=users[1], hold_id=second),  # all of it
            group_commit.capture(groups, user_id=users[1], hold_id=third),  # not this user's hold
            group_commit.capture(groups, user_id=users[2], hold_id=third, amount=41),  # more than held
            return_exceptions=True)
        assert sizes == [5]
        return answers

    partial, again, whole, not_theirs, too_much = run(database_url, body)
    hold, balance, available = partial
    assert (hold.status, hold.captured, hold.released, balance, available) == ("captured", 15, 25, 85, 85)
    assert isinstance(again, Conflict) and again.body()["error"]["hold"]["status"] == "captured"
    hold, balance, available = whole
    assert (hold.status, hold.captured, hold.released, balance, available) == ("captured", 40, 0, 60, 60)
    assert isinstance(not_theirs, NotFound)
    assert isinstance(too_much, InvalidRequest) and too_much.param == "amount"
    assert wallet(database_url, users[0]) == (85, 0) and wallet(database_url, users[2]) == (100, 40)
