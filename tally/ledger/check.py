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
- ``subscription_invoice_without_credit``: a recorded subscription invoice points at no transaction;
- ``grants_balance_mismatch``: a wallet's balance is not its grants' remaining credits + held − debt;
- ``grant_out_of_bounds``: a grant's remaining is below zero or above its amount;
- ``grant_entries_mismatch``: a grant's remaining (plus what open holds took from it) differs from what its
  wallet entries say (its credit, less every draw);
- ``held_mismatch``: a wallet's ``held`` is not the sum of its open holds, or a hold's grants don't add up
  to its amount;
- ``holds_beyond_balance``: open holds reserve more than the wallet owns (balance + debt);
- ``hold_capture_mismatch``: a captured hold without its spend transaction of exactly the captured credits,
  or a transaction on a hold that was not captured;
- ``grant_not_expired``: a grant more than an hour past its expiry still holds credits; ``expiry_mismatch``:
  an expiry transaction draws from a grant other than the one it names (or, for a hold's, than its grants);
- ``dispute_mismatch``: a dispute's credits taken or given back differ from its transactions, or a dispute
  that was not won gave credits back;
- ``invoice_refund_mismatch``: a subscription invoice's ``credits_clawed_back`` differs from what its
  refund transactions took;
- ``money_outstanding_mismatch``: the dashboard's money paid for unused credits (``credit_money_totals`` and
  the deltas not folded yet) differs, in a currency, from what the paid grants' remaining credits are worth
  (``remaining × paid_amount ÷ amount``) by a millionth of a minor unit or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from . import references

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
          AND NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.reference = {ORDER_PURCHASE})
        ORDER BY o.id"""),
    ("credit_without_paid_order", """
        SELECT 'transaction ' || t.id, t.reference || ' but order '
               || COALESCE(o.id || ' is ' || o.status, t.order_id || ' does not exist', 'is not named')
        FROM ledger_transactions t LEFT JOIN orders o ON o.id = t.order_id
        WHERE t.kind = 'purchase'
          AND (o.id IS NULL OR o.status NOT IN ('paid', 'refunded') OR t.reference <> {ORDER_PURCHASE})
        ORDER BY t.id"""),
    ("credit_amount_mismatch", """
        SELECT 'order ' || o.id, 'credited ' || COALESCE(w.total, 0) || ' coins for a pack of '
               || (o.coins + o.bonus)
        FROM orders o JOIN ledger_transactions t ON t.reference = {ORDER_PURCHASE}
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
    ("grants_balance_mismatch", """
        SELECT 'wallet of ' || b.user_id, 'balance ' || b.balance || ', grants hold ' || COALESCE(g.remaining, 0)
               || ' + held ' || b.held || ' - debt ' || b.debt
        FROM wallet_balances b
        LEFT JOIN (SELECT user_id, sum(remaining) AS remaining FROM credit_grants GROUP BY user_id) g
               ON g.user_id = b.user_id
        WHERE b.balance <> COALESCE(g.remaining, 0) + b.held - b.debt ORDER BY b.user_id"""),
    ("grant_out_of_bounds", """
        SELECT 'grant ' || id, 'remaining ' || remaining || ' of ' || amount
        FROM credit_grants WHERE remaining < 0 OR remaining > amount ORDER BY id"""),
    ("grant_entries_mismatch", """
        WITH held AS (
            SELECT u.grant_id, sum(u.amount) AS amount
            FROM credit_holds h, unnest(h.grant_ids, h.grant_amounts) AS u(grant_id, amount)
            WHERE h.status = 'held' GROUP BY u.grant_id),
        moved AS (SELECT grant_id, sum(amount) AS amount FROM ledger_entries WHERE grant_id IS NOT NULL
                  GROUP BY grant_id)
        SELECT 'grant ' || g.id, 'remaining ' || g.remaining || ' + held ' || COALESCE(h.amount, 0)
               || ', its entries say ' || (COALESCE(m.amount, 0)
                                           + CASE WHEN g.transaction_id IS NULL THEN g.amount ELSE 0 END)
        FROM credit_grants g LEFT JOIN held h ON h.grant_id = g.id LEFT JOIN moved m ON m.grant_id = g.id
        WHERE g.remaining + COALESCE(h.amount, 0)
              <> COALESCE(m.amount, 0) + CASE WHEN g.transaction_id IS NULL THEN g.amount ELSE 0 END
        ORDER BY g.id"""),
    ("held_mismatch", """
        SELECT 'wallet of ' || b.user_id, 'held ' || b.held || ', open holds reserve ' || COALESCE(h.amount, 0)
        FROM wallet_balances b
        LEFT JOIN (SELECT user_id, sum(amount) AS amount FROM credit_holds WHERE status = 'held' GROUP BY user_id) h
               ON h.user_id = b.user_id
        WHERE b.held <> COALESCE(h.amount, 0)
        UNION ALL
        SELECT 'hold ' || id, 'holds ' || amount || ' but its grants gave '
               || COALESCE((SELECT sum(a) FROM unnest(grant_amounts) a), 0)
        FROM credit_holds WHERE amount <> COALESCE((SELECT sum(a) FROM unnest(grant_amounts) a), 0)
        ORDER BY 1"""),
    ("holds_beyond_balance", """
        SELECT 'wallet of ' || user_id, 'holds ' || held || ' of a balance of ' || balance || ' + debt ' || debt
        FROM wallet_balances WHERE held > balance + debt ORDER BY user_id"""),
    ("hold_capture_mismatch", """
        SELECT 'hold ' || h.id, h.status || ', captured ' || h.captured || ', its transaction took '
               || COALESCE(-(SELECT sum(e.amount) FROM ledger_entries e JOIN wallet_balances b
                             ON b.account_id = e.account_id AND b.user_id = h.user_id
                             WHERE e.transaction_id = t.id), 0)
        FROM credit_holds h LEFT JOIN ledger_transactions t ON t.reference = {HOLD_CAPTURE}
        WHERE (h.status = 'captured') <> (t.id IS NOT NULL)
           OR (t.id IS NOT NULL AND h.captured <> -(SELECT sum(e.amount) FROM ledger_entries e
                                                    JOIN wallet_balances b ON b.account_id = e.account_id
                                                    AND b.user_id = h.user_id WHERE e.transaction_id = t.id))
        ORDER BY h.id"""),
    ("grant_not_expired", """
        SELECT 'grant ' || g.id, 'expired at ' || g.expires_at || ' but still holds ' || g.remaining
        FROM credit_grants g
        WHERE g.remaining > 0 AND g.expires_at < now() - interval '1 hour'
        ORDER BY g.id"""),
    ("expiry_mismatch", """
        SELECT 'transaction ' || t.id, t.reference || ' draws from grant ' || COALESCE(e.grant_id::text, 'none')
        FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
        JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet'
        LEFT JOIN credit_holds h ON t.reference = {HOLD_EXPIRY}
        WHERE t.kind = 'expiry' AND t.reference IS DISTINCT FROM {GRANT_EXPIRY}
          AND NOT (h.id IS NOT NULL AND e.grant_id = ANY(h.grant_ids))
        ORDER BY t.id"""),
    ("dispute_mismatch", """
        WITH moved AS (
            SELECT t.reference, sum(e.amount) AS amount FROM ledger_transactions t
            JOIN ledger_entries e ON e.transaction_id = t.id
            JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet'
            WHERE t.kind IN ('dispute', 'reinstatement') GROUP BY t.reference)
        SELECT 'dispute ' || d.id, d.status || ': took ' || d.credits_withdrawn || ' (transactions '
               || COALESCE(-w.amount, 0) || '), gave back ' || d.credits_reinstated || ' (transactions '
               || COALESCE(r.amount, 0) || ')'
        FROM disputes d
        LEFT JOIN moved w ON w.reference = {DISPUTE_WITHDRAWN}
        LEFT JOIN moved r ON r.reference = {DISPUTE_REINSTATED}
        WHERE d.credits_withdrawn <> COALESCE(-w.amount, 0) OR d.credits_reinstated <> COALESCE(r.amount, 0)
           OR (d.credits_reinstated > 0 AND d.status <> 'won')
        ORDER BY d.id"""),
    ("invoice_refund_mismatch", """
        SELECT 'subscription invoice ' || s.id, 'credits_clawed_back ' || s.credits_clawed_back
               || ', refund transactions took ' || COALESCE(-r.taken, 0)
        FROM subscription_invoices s
        LEFT JOIN (SELECT t.details ->> 'invoice_id' AS invoice_id, sum(e.amount) AS taken
                   FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
                   JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'wallet'
                   WHERE t.kind = 'refund' AND t.order_id IS NULL GROUP BY 1) r ON r.invoice_id = s.id
        WHERE s.credits_clawed_back <> COALESCE(-r.taken, 0) ORDER BY s.id"""),
    ("money_outstanding_mismatch", """
        WITH worth AS (SELECT paid_currency AS currency, sum(remaining::numeric * paid_amount / amount) AS amount
                       FROM credit_grants WHERE paid_amount IS NOT NULL GROUP BY paid_currency),
        counted AS (SELECT currency, sum(amount) AS amount
                    FROM (SELECT currency, amount FROM credit_money_totals
                          UNION ALL SELECT currency, amount FROM credit_money_deltas) m GROUP BY currency)
        SELECT 'money outstanding in ' || COALESCE(w.currency, c.currency),
               'counted ' || round(COALESCE(c.amount, 0), 6) || ', the paid grants are worth '
               || round(COALESCE(w.amount, 0), 6)
        FROM worth w FULL JOIN counted c ON c.currency = w.currency
        WHERE abs(COALESCE(w.amount, 0) - COALESCE(c.amount, 0)) >= 0.000001 ORDER BY 1"""),
]

# The references in the queries come from the builders the writers use.
_REFERENCES = {
    "{ORDER_PURCHASE}": references.sql_expression(references.order_purchase, "o.id"),
    "{HOLD_CAPTURE}": references.sql_expression(references.hold_capture, "h.id"),
    "{GRANT_EXPIRY}": references.sql_expression(references.grant_expiry, "e.grant_id"),
    "{HOLD_EXPIRY}": references.sql_expression(references.hold_expiry, "h.id"),
    "{DISPUTE_WITHDRAWN}": references.sql_expression(references.dispute_withdrawal, "d.id"),
    "{DISPUTE_REINSTATED}": references.sql_expression(references.dispute_reinstatement, "d.id"),
}


def _with_references(query: str) -> str:
    for placeholder, expression in _REFERENCES.items():
        query = query.replace(placeholder, expression)
    return query


CHECKS = [(kind, _with_references(query)) for kind, query in CHECKS]

KINDS = tuple(kind for kind, _ in CHECKS)

COUNTED = ("ledger_transactions", "ledger_entries", "wallet_balances", "credit_grants", "credit_holds", "orders",
           "invoices")


async def check_ledger(session: AsyncSession, *, limit: int = DEFAULT_LIMIT,
                       checks: Sequence[tuple[str, str]] = CHECKS, counted: Sequence[str] = COUNTED) -> Report:
    """Run ``checks`` (every one by default) in the session's transaction (give it a snapshot: see
    ``run_check``). Never writes."""
    report = Report()
    conn = await session.connection()
    for table in counted:
        report.checked[table] = int((await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one())
    for kind, query in checks:
        # Driver SQL: the queries are constants, and their reference literals (':purchase') are no bind parameters.
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
