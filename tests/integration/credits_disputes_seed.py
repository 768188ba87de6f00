"""Credits counters and disputes for the operator pages' tests, written straight into a fresh database; the
expected numbers in the tests are worked out by hand from the comments here."""

from __future__ import annotations

import psycopg

from tally.db import libpq_url

HOUR, DAY = 3600, 86400

# (day, category, movement, amount, folded): a folded counter and the deltas not folded yet are summed.
TOTALS = [
    ("2026-10-03", "paid", "granted", 600, True), ("2026-10-03", "paid", "granted", 400, False),
    ("2026-10-03", "promotional", "granted", 200, True),
    ("2026-10-04", "paid", "used", 300, True), ("2026-10-04", "promotional", "used", 20, False),
    ("2026-10-20", "paid", "expired", 100, True), ("2026-10-20", "promotional", "expired", 30, True),
    ("2026-10-21", "paid", "reversed", 50, False),
    ("2026-09-30", "paid", "granted", 5, True),  # before the period: outstanding, not in the chart
]
# paid: 1000 + 5 − 300 − 100 − 50 = 555; promotional: 200 − 20 − 30 = 150
OUTSTANDING = {"paid": 555, "promotional": 150}

# (currency, amount, folded): the money paid for unused credits, a folded total and the deltas not folded yet.
# usd: 5000.4 + 499.35 − 0.25 = 5499.5 → 5500 cents (rounded half up); eur: 1234 folded, then all of it used.
MONEY = [("usd", "5000.4", True), ("usd", "499.35", False), ("usd", "-0.25", False),
         ("eur", "1234", True), ("eur", "-1234", False)]


def disputes(now: int) -> list[tuple[str, str, int, str, str, int | None, int, int, int]]:
    """(id, user, amount in cents, reason, status, evidence due, credits taken, given back, created)."""
    return [
        ("dp_soon", "alice", 999, "fraudulent", "needs_response", now + 12 * HOUR, 500, 0, now - 3 * DAY),
        ("dp_later", "bob", 499, "product_not_received", "needs_response", now + 5 * DAY + 12 * HOUR, 250, 0,
         now - 2 * DAY),
        ("dp_late", "alice", 1999, "duplicate", "needs_response", now - 2 * HOUR, 1000, 0, now - 9 * DAY),
        ("dp_review", "bob", 299, "general", "under_review", None, 150, 0, now - 20 * DAY),
        ("dp_won", "alice", 999, "fraudulent", "won", now - 30 * DAY, 500, 500, now - 60 * DAY),
        ("dp_lost", "bob", 499, "subscription_canceled", "lost", now - 40 * DAY, 250, 0, now - 50 * DAY),
    ]


def seed(url: str, now: int) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        for user in ("alice", "bob"):
            conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user, f"{user}@example.com"))
        all_time: dict[tuple[str, str], int] = {}
        for day, category, movement, amount, folded in TOTALS:
            table = "credit_totals" if folded else "credit_total_deltas"
            conn.execute(f"INSERT INTO {table} (day, category, movement, amount) VALUES (%s, %s, %s, %s)",
                         (day, category, movement, amount))
            if folded:  # the fold also adds it to the all-time row
                all_time[(category, movement)] = all_time.get((category, movement), 0) + amount
        for (category, movement), amount in all_time.items():
            conn.execute("INSERT INTO credit_totals (day, category, movement, amount) "
                         "VALUES ('-infinity', %s, %s, %s)", (category, movement, amount))
        for currency, money, folded in MONEY:
            conn.execute(f"INSERT INTO {'credit_money_totals' if folded else 'credit_money_deltas'} "
                         "(currency, amount) VALUES (%s, %s)", (currency, money))
        for dp, user, amount, reason, status, due, taken, given, created in disputes(now):
            conn.execute("""INSERT INTO disputes (id, user_id, charge_id, subscription_invoice_id, amount, currency,
                            reason, status, evidence_due_by, credits_withdrawn, credits_reinstated, stripe_created)
                            VALUES (%s, %s, %s, %s, %s, 'usd', %s, %s, %s, %s, %s, %s)""",
                         (dp, user, f"ch_{dp}", f"in_{dp}", amount, reason, status, due, taken, given, created))
