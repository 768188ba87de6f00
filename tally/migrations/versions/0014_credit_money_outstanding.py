"""The money paid for credits not yet used (issue 14): the liability an accountant asks for.

- ``credit_grants.paid_amount`` / ``paid_currency``: what the customer paid for a grant (net of tax, in minor
  units), on the grants a payment made (a pack's coins, a subscription invoice's allowance, an upgrade's
  prorated credits); NULL on grants nobody paid for (promotions, bonuses, operator adjustments, rollovers,
  reinstatements).
- Every change of such a grant's ``remaining`` changes what its unused credits are worth,
  ``remaining × paid_amount ÷ amount``. A row trigger appends that change to ``credit_money_deltas`` in the same
  transaction (whatever function moved the credits: a spend, a hold, an expiry, a reversal), and the fold that
  already runs every few seconds adds the deltas into ``credit_money_totals``, one row per currency. The dashboard
  reads a handful of rows, never the grants. The value is kept as an exact ``numeric`` so that many small draws
  add up to what a single one would; the page rounds it to minor units.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Only paid grants have a trigger to run (WHEN is checked before the function is called), so a promotional
# grant's spend costs nothing more.
COUNT_MONEY = """
CREATE FUNCTION tally_ledger_count_money() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before numeric := 0;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.paid_amount IS NOT NULL THEN
        before := OLD.remaining::numeric * OLD.paid_amount / OLD.amount;
    END IF;
    INSERT INTO credit_money_deltas (currency, amount)
    VALUES (NEW.paid_currency, NEW.remaining::numeric * NEW.paid_amount / NEW.amount - before);
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER credit_grants_money_insert AFTER INSERT ON credit_grants
    FOR EACH ROW WHEN (NEW.paid_amount IS NOT NULL) EXECUTE FUNCTION tally_ledger_count_money();
CREATE TRIGGER credit_grants_money_update AFTER UPDATE OF remaining, paid_amount ON credit_grants
    FOR EACH ROW WHEN (NEW.paid_amount IS NOT NULL AND (NEW.remaining IS DISTINCT FROM OLD.remaining
                                                       OR OLD.paid_amount IS NULL))
    EXECUTE FUNCTION tally_ledger_count_money();
"""

# The 0009 fold, which now also folds the money deltas (a data-modifying WITH runs whether or not it is read).
FOLD = """
CREATE OR REPLACE FUNCTION tally_ledger_fold_totals() RETURNS bigint LANGUAGE sql AS $$
    WITH moved AS (DELETE FROM credit_total_deltas RETURNING day, category, movement, amount),
    summed AS (SELECT day, category, movement, sum(amount) AS amount FROM moved GROUP BY day, category, movement
               UNION ALL
               SELECT '-infinity'::date, category, movement, sum(amount) FROM moved GROUP BY category, movement),
    folded AS (INSERT INTO credit_totals (day, category, movement, amount) SELECT * FROM summed
               ON CONFLICT (day, category, movement) DO UPDATE SET amount = credit_totals.amount + EXCLUDED.amount
               RETURNING 1),
    money_moved AS (DELETE FROM credit_money_deltas RETURNING currency, amount),
    money_folded AS (INSERT INTO credit_money_totals (currency, amount)
                     SELECT currency, sum(amount) FROM money_moved GROUP BY currency
                     ON CONFLICT (currency) DO UPDATE SET amount = credit_money_totals.amount + EXCLUDED.amount
                     RETURNING 1)
    SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM money_moved)
$$;
"""

FOLD_0009 = """
CREATE OR REPLACE FUNCTION tally_ledger_fold_totals() RETURNS bigint LANGUAGE sql AS $$
    WITH moved AS (DELETE FROM credit_total_deltas RETURNING day, category, movement, amount),
    summed AS (SELECT day, category, movement, sum(amount) AS amount FROM moved GROUP BY day, category, movement
               UNION ALL
               SELECT '-infinity'::date, category, movement, sum(amount) FROM moved GROUP BY category, movement),
    folded AS (INSERT INTO credit_totals (day, category, movement, amount) SELECT * FROM summed
               ON CONFLICT (day, category, movement) DO UPDATE SET amount = credit_totals.amount + EXCLUDED.amount
               RETURNING 1)
    SELECT count(*) FROM moved
$$;
"""


def upgrade() -> None:
    op.add_column("credit_grants", sa.Column("paid_amount", sa.BigInteger(), nullable=True))
    op.add_column("credit_grants", sa.Column("paid_currency", sa.String(3), nullable=True))
    op.create_check_constraint("paid", "credit_grants",
                               "(paid_amount IS NULL) = (paid_currency IS NULL) AND paid_amount >= 0")
    op.create_table(
        "credit_money_totals",
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("amount", sa.Numeric(), nullable=False),
    )
    op.create_table(  # appended by the trigger, emptied by the fold: no key, no index
        "credit_money_deltas",
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
    )
    op.execute(COUNT_MONEY)
    op.execute(TRIGGERS)
    op.execute(FOLD)


def downgrade() -> None:
    op.execute(FOLD_0009)
    op.execute("DROP TRIGGER IF EXISTS credit_grants_money_update ON credit_grants")
    op.execute("DROP TRIGGER IF EXISTS credit_grants_money_insert ON credit_grants")
    op.execute("DROP FUNCTION IF EXISTS tally_ledger_count_money()")
    op.drop_table("credit_money_deltas")
    op.drop_table("credit_money_totals")
    op.drop_constraint("paid", "credit_grants", type_="check")
    op.drop_column("credit_grants", "paid_currency")
    op.drop_column("credit_grants", "paid_amount")
