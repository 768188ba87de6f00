"""The ledger invariant checker behind ``tally ledger check``: read-only, on one consistent snapshot, so it
can run against a live production database as well as at the end of every fault test.

What the database constraints already guarantee (unique references, balanced commits, append-only
entries) is checked again here, because triggers can be disabled, rows restored from a partial backup,
or a migration can be wrong; and the rest (chains, counters, the links between orders, credits and
invoices) is only ever checked here. Each kind of finding below names one invariant:

- ``unbalanced_transaction``: a transaction's entries do not sum to zero;
- ``transaction_without_entries``: a header with no entries (only a zero subscription grant may be one);
- ``balance_mismatch``: a wallet's balance row differs from the sum of its account's entries;
- ``balance_after_chain``: a wallet entry's ``balance_after`` is not the previous one plus its amount
  (a missing, altered or reordered entry), or is missing;
- ``wallet_without_balance`` / ``balance_without_wallet``: a wallet account and its balance row
  do not point at each other;
- ``entry_on_foreign_wallet``: a transaction of one user moved another user's wallet;
- ``invoice_number_gap``: a year's invoice numbers are not 1..n, its counter is not n, or a number is
  not ``INV-<year>-<sequence>``;
- ``paid_order_without_credit`` / ``credit_without_paid_order`` / ``credit_amount_mismatch``: a paid
  (or refunded) order and its one purchase transaction of exactly its coins and bonus;
- ``paid_order_without_invoice`` / ``invoice_without_paid_order`` / ``invoice_amount_mismatch``;
- ``clawback_mismatch``: an order's ``coins_clawed_back`` differs from what its refund transactions took;
- ``subscription_invoice_without_credit``: a recorded subscription invoice points at no transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database

# Rows listed per kind of finding; the count is always complete.
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str  # what is wrong, by its ids: "transaction 12", "wallet of user-1", "invoices of 2026"
    detail: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # findings per kind (beyond the listed ones too)
    checked: dict[str, int] = field(default_factory=dict)  # rows looked at per table

    @property
    def ok(self) -> bool:
        return not self.totals

    def kinds(self) -> set[str]:
        return set(self.totals)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "totals": self.totals,
                "findings": [f.__dict__ for f in self.findings]}


# Each check: (kind, SQL yielding (subject, detail) rows). Every query reads one snapshot (see run_check).
CHECKS: list[tuple[str, str]] = [
    ("unbalanced_transaction", """
        SELECT 'transaction ' || transaction_id, 'entries sum to ' || sum(amount)
        FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0 ORDER BY transaction_id"""),
    ("transaction_without_entries", """
        SELECT 'transaction ' || t.id, t.kind || ' ' || t.reference || ' has no entries'
        FROM ledger_transactions t
        WHERE t.kind <> 'subscription'
          AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id) ORDER BY t.id"""),
    ("balance_mismatch", """
        SELECT 'wallet of ' || b.user_id, 'balance ' || b.balance || ', entries sum to ' || COALESCE(s.total, 0)
        FROM wallet_balances b
        LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s
               ON s.account_id = b.account_id
        WHERE b.balance <> COALESCE(s.total, 0) ORDER BY b.user_id"""),
    ("balance_after_chain", """
        SELECT 'entry ' || id || ' (' || code || ')',
               CASE WHEN balance_after IS NULL THEN 'no balance_after'
                    ELSE 'balance_after ' || balance_after || ' but previous ' || previous || ' + amount '
                         || amount || ' = ' || (previous + amount) END
        FROM (SELECT e.id, a.code, e.amount, e.balance_after,
                     COALESCE(lag(e.balance_after) OVER (PARTITION BY e.account_id ORDER BY e.id), 0) AS previous
              FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet') w
        WHERE balance_after IS DISTINCT FROM previous + amount ORDER BY id"""),
    ("wallet_without_balance", """
        SELECT 'account ' || a.id || ' (' || a.code || ')', 'a wallet account with no balance row of its user'
        FROM ledger_accounts a
        WHERE a.kind = 'wallet'
          AND NOT EXISTS (SELECT 1 FROM wallet_balances b WHERE b.account_id = a.id AND b.user_id = a.user_id)
        ORDER BY a.id"""),
    ("balance_without_wallet", """
        SELECT 'wallet of ' || b.user_id, 'its balance row points at account ' || b.account_id
               || COALESCE(' (' || a.code || ')', ' (missing)') || ', not the user''s wallet'
        FROM wallet_balances b LEFT JOIN ledger_accounts a ON a.id = b.account_id
        WHERE a.id IS NULL OR a.kind <> 'wallet' OR a.user_id IS DISTINCT FROM b.user_id ORDER BY b.user_id"""),
    ("entry_on_foreign_wallet", """
        SELECT 'entry ' || e.id, 'transaction ' || t.id || ' of ' || COALESCE(t.user_id, 'no user')
               || ' moves ' || a.code
        FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
        JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet'
        WHERE a.user_id IS DISTINCT FROM t.user_id ORDER BY e.id"""),
    ("invoice_number_gap", """
        WITH years AS (
            SELECT year, count(*) AS n, min(sequence) AS first, max(sequence) AS last FROM invoices GROUP BY year),
        per_year AS (
            SELECT COALESCE(y.year, c.year) AS year, COALESCE(y.n, 0) AS n, y.first, COALESCE(y.last, 0) AS last,
                   c.last_number
            FROM years y FULL JOIN invoice_counters c ON c.year = y.year)
        SELECT 'invoices of ' || year,
               n || ' invoices numbered ' || COALESCE(first || '..' || last, 'none') || ', counter at '
               || COALESCE(last_number::text, 'none')
               || COALESCE(', missing ' || (SELECT string_agg(s::text, ', ')
                                            FROM (SELECT s FROM generate_series(1, GREATEST(last, last_number)) s
                                                  WHERE NOT EXISTS (SELECT 1 FROM invoices i
                                                                    WHERE i.year = p.year AND i.sequence = s)
                                                  ORDER BY s LIMIT 20) m), '')
        FROM per_year p
        WHERE n <> last OR COALESCE(first, 1) <> 1 OR last_number IS DISTINCT FROM last
        UNION ALL
        SELECT 'invoice ' || id, 'number ' || number || ' is not INV-' || year || '-' || lpad(sequence::text, 6, '0')
        FROM invoices WHERE number <> 'INV-' || year || '-' || lpad(sequence::text, 6, '0')
        ORDER BY 1"""),
    ("paid_order_without_credit", """
        SELECT 'order ' || o.id, o.status || ' but no ledger transaction order:' || o.id || ':purchase'
        FROM orders o
        WHERE o.status IN ('paid', 'refunded')
          AND NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.reference = 'order:' || o.id || ':purchase')
        ORDER BY o.id"""),
    ("credit_without_paid_order", """
        SELECT 'transaction ' || t.id, t.reference || ' but order '
               || COALESCE(o.id || ' is ' || o.status, t.order_id || ' does not exist', 'is not named')
        FROM ledger_transactions t LEFT JOIN orders o ON o.id = t.order_id
        WHERE t.kind = 'purchase'
          AND (o.id IS NULL OR o.status NOT IN ('paid', 'refunded') OR t.reference <> 'order:' || o.id || ':purchase')
        ORDER BY t.id"""),
    ("credit_amount_mismatch", """
        SELECT 'order ' || o.id, 'credited ' || COALESCE(w.total, 0) || ' coins for a pack of '
               || (o.coins + o.bonus)
        FROM orders o JOIN ledger_transactions t ON t.reference = 'order:' || o.id || ':purchase'
        LEFT JOIN (SELECT e.transaction_id, sum(e.amount) AS total FROM ledger_entries e
                   JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet'
                   GROUP BY e.transaction_id) w ON w.transaction_id = t.id
        WHERE COALESCE(w.total, 0) <> o.coins + o.bonus ORDER BY o.id"""),
    ("paid_order_without_invoice", """
        SELECT 'order ' || o.id, o.status || ' but no invoice'
        FROM orders o
        WHERE o.status IN ('paid', 'refunded') AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = o.id)
        ORDER BY o.id"""),
    ("invoice_without_paid_order", """
        SELECT 'invoice ' || i.number, 'for order ' || i.order_id || ', which is ' || o.status
        FROM invoices i JOIN orders o ON o.id = i.order_id
        WHERE o.status NOT IN ('paid', 'refunded') ORDER BY i.number"""),
    ("invoice_amount_mismatch", """
        SELECT 'invoice ' || i.number, 'for ' || i.amount || ' ' || i.currency || ', order ' || o.id || ' is '
               || o.amount || ' ' || o.currency || CASE WHEN i.user_id <> o.user_id
                                                        THEN ', and of another user' ELSE '' END
        FROM invoices i JOIN orders o ON o.id = i.order_id
        WHERE i.amount <> o.amount OR i.currency <> o.currency OR i.user_id <> o.user_id ORDER BY i.number"""),
    ("clawback_mismatch", """
        SELECT 'order ' || o.id, 'coins_clawed_back ' || o.coins_clawed_back || ', refund transactions took '
               || COALESCE(-r.taken, 0)
        FROM orders o
        LEFT JOIN (SELECT t.order_id, sum(e.amount) AS taken FROM ledger_transactions t
                   JOIN ledger_entries e ON e.transaction_id = t.id
                   JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet'
                   WHERE t.kind = 'refund' GROUP BY t.order_id) r ON r.order_id = o.id
        WHERE o.coins_clawed_back <> COALESCE(-r.taken, 0) ORDER BY o.id"""),
    ("subscription_invoice_without_credit", """
        SELECT 'subscription invoice ' || s.id, 'points at ledger transaction ' || s.ledger_transaction_id
               || ', which does not exist'
        FROM subscription_invoices s
        WHERE s.ledger_transaction_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = s.ledger_transaction_id)
        ORDER BY s.id"""),
]

KINDS = tuple(kind for kind, _ in CHECKS)

COUNTED = ("ledger_transactions", "ledger_entries", "wallet_balances", "orders", "invoices")


async def check_ledger(session: AsyncSession, *, limit: int = DEFAULT_LIMIT) -> Report:
    """Run every check in the session's transaction (give it a snapshot: see ``run_check``). Never writes."""
    report = Report()
    conn = await session.connection()
    for table in COUNTED:
        report.checked[table] = int((await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one())
    for kind, query in CHECKS:
        # Driver SQL: the queries are constants, and their ':purchase' literals are no bind parameters.
        rows = (await conn.exec_driver_sql(query)).all()
        if rows:
            report.totals[kind] = len(rows)
            report.findings += [Finding(kind, str(subject), str(detail)) for subject, detail in rows[:limit]]
    return report


async def run_check(db: Database, *, limit: int = DEFAULT_LIMIT) -> Report:
    """The checks on one repeatable-read, read-only snapshot: writes committed meanwhile (a live service)
    are not seen halfway, so a balance is compared with exactly the entries that made it."""
    async with db.transaction() as session:
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        return await check_ledger(session, limit=limit)


def format_report(report: Report) -> str:
    checked = ", ".join(f"{n} {table}" for table, n in report.checked.items())
    if report.ok:
        return f"ledger check: OK ({checked})"
    lines = [f"ledger check: {sum(report.totals.values())} finding(s) ({checked})"]
    for kind in KINDS:
        if kind not in report.totals:
            continue
        listed = [f for f in report.findings if f.kind == kind]
        lines.append(f"{kind}: {report.totals[kind]}")
        lines += [f"  {f.subject}: {f.detail}" for f in listed]
        if report.totals[kind] > len(listed):
            lines.append(f"  … and {report.totals[kind] - len(listed)} more")
    return "\n".join(lines)
