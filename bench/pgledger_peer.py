"""pgledger (github.com/pgr0ss/pgledger), a pure-SQL double-entry ledger, run beside Tally as the yardstick for
``bench/spend.py``: its own SQL files, loaded from a checkout outside this repository, into a database of its own
on the same PostgreSQL, its ``pgledger_create_transfer`` function driven by pgbench (``-M prepared``).

    git clone https://github.com/pgr0ss/pgledger /work/peers/pgledger
    .venv/bin/python bench/spend.py --pgledger /work/peers/pgledger   # or TALLY_BENCH_PGLEDGER=...

What a transfer is here, to compare like with like: a Tally spend moves one coin from a user's wallet (floor
checked) to ``system:spending``, whose balance Tally never updates (system balances are derived from entries),
so only the wallet row is locked. Every pgledger transfer updates both accounts' balances (each locked, in
sorted order), so a single sink account would make every transfer hot. The "1 000 accounts" workload is therefore
what pgledger's own ``go/performance_check.go`` runs: one unit between two distinct random accounts; "one hot
account" moves one unit from the same account to a random one of the 1 000. Accounts refuse negative balances
(as a wallet does) and start with 10^12 units, moved in by transfers from a funding account.

Account ids: pgledger makes ULIDs (``pgla_`` + 26 characters); here they are renumbered right after creation,
before any transfer, to ``pgla_`` + the account number padded to the same 26 characters, so that pgbench can
address an account by number with no lookup inside the measured statement.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tally.db import libpq_url

ENV = "TALLY_BENCH_PGLEDGER"
SQL_FILES = ["vendor/scoville-pgsql-ulid/ulid-to-uuid.sql", "vendor/scoville-pgsql-ulid/uuid-to-ulid.sql",
             "pgledger.sql"]  # in this order, as its justfile's ``dbload`` does
START_BALANCE = 10**12


def checkout(option: str | None) -> Path | None:
    """The pgledger checkout named by ``--pgledger`` or $TALLY_BENCH_PGLEDGER, if it holds the SQL files."""
    given = option or os.environ.get(ENV)
    if not given:
        return None
    path = Path(given)
    missing = [name for name in SQL_FILES if not (path / name).is_file()]
    if missing:
        raise SystemExit(f"{path} is not a pgledger checkout: {', '.join(missing)} missing")
    return path


def account_id(number: int) -> str:
    return f"pgla_{number:026d}"


@contextmanager
def pgledger_database(tally_url: str, path: Path, accounts: int) -> Iterator[str]:
    """A new database beside Tally's (``tally_url``, a SQLAlchemy URL: same server), pgledger loaded and seeded:
    ``accounts`` accounts numbered 1..accounts plus the hot one (``accounts + 1``). Yields its libpq URL; the
    database is dropped afterwards."""
    name = f"pgledger_bench_{uuid.uuid4().hex[:10]}"
    admin_url = libpq_url(tally_url)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.transaction():
                for file in SQL_FILES:
                    conn.execute((path / file).read_text())  # type: ignore[arg-type] - a script, no parameters
            seed(conn, accounts)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(conn: psycopg.Connection, accounts: int) -> None:
    """Accounts through pgledger's own ``pgledger_create_account``, renumbered (module docstring), funded by
    one ``pgledger_create_transfers`` call from an account that may go negative."""
    with conn.transaction():
        conn.execute("SELECT count(*) FROM generate_series(1, %s) g, "
                     "LATERAL pgledger_create_account('bench-' || g, 'USD', false, true)", (accounts + 1,))
        conn.execute("UPDATE pgledger_accounts SET id = 'pgla_' || lpad(substr(name, 7), 26, '0') "
                     "WHERE name LIKE 'bench-%'")
        conn.execute("SELECT pgledger_create_account('funding', 'USD', true, true)")
        conn.execute("SELECT count(*) FROM pgledger_create_transfers(ARRAY("
                     "SELECT ((SELECT id FROM pgledger_accounts WHERE name = 'funding'), id, %s)::transfer_request "
                     "FROM pgledger_accounts WHERE name LIKE 'bench-%%' ORDER BY id))", (START_BALANCE,))
    conn.execute("VACUUM ANALYZE")


def transfer_script(hot: bool, accounts: int) -> str:
    """The pgbench script: one ``pgledger_create_transfer`` of one unit, selecting the new transfer's id as
    pgledger's own performance check does."""
    account = f"'pgla_' || lpad(:{{}}::text, 26, '0')"
    if hot:
        return (f"\\set v random(1, {accounts})\n"
                f"SELECT id FROM pgledger_create_transfer('{account_id(accounts + 1)}', {account.format('v')}, 1);\n")
    return (f"\\set u random(1, {accounts})\n"
            f"\\set v 1 + (:u + random(0, {accounts - 2})) % {accounts}\n"  # any account but u
            f"SELECT id FROM pgledger_create_transfer({account.format('u')}, {account.format('v')}, 1);\n")


def snapshot(url: str) -> tuple[int, int]:
    """(transfers so far, sum of all balances): a run must add exactly one transfer per transaction pgbench
    counted, and a transfer never changes the sum (it stays 0: the funding account holds the negative side)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM pgledger_transfers), "
                           "(SELECT sum(balance) FROM pgledger_accounts)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
