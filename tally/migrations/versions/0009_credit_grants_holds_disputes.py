"""Credits with lifetimes, holds and disputes (Ledger 2).

- ``credit_grants``: every credit enters the wallet as a grant (source, category, amount, remaining,
  priority, expiry). A debit draws from grants in one documented order (``tally.ledger.credits``) and each
  wallet entry names the grant it moved (``ledger_entries.grant_id``).
- ``credit_holds``: credits reserved for work whose cost is known at the end; the grants they were drawn
  from are kept on the hold, so a capture spends exactly those and a release gives them back.
- ``wallet_balances.held`` (the sum of open holds) and ``.debt`` (what reversals took beyond every grant; the
  next grant pays it first), so that for every wallet ``balance = Σ remaining + held − debt``.
- ``disputes``: each Stripe dispute on a payment Tally credited, and the credits it took and gave back.
- ``subscription_invoices`` learn their PaymentIntent and what their refunds took back.

The wallet-moving primitives are PostgreSQL functions: a spend, a hold, a capture and a release are each
one round trip (one ``SELECT tally_ledger_…(…)``) that runs several statements under the wallet's row lock,
each statement seeing the rows the previous one wrote. Every function locks the wallet row first; that lock
serialises all movements of one user, so the grant rows below it are never contended. Python orchestrates
the rest (``tally.ledger.posting``) through ``tally_ledger_credit`` and ``tally_ledger_draw``.

Each existing wallet balance becomes one never-expiring paid grant (a negative one becomes debt); the
ledger's entries and balances are left as they are, so ``tally ledger check`` passes before and after.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NEW_SYSTEM_ACCOUNTS = ("system:promotions", "system:adjustments", "system:expired", "system:disputes")

# The dashboard's totals (credits granted, used, expired, reversed per day and category) are counted in the
# same transaction as the movement, so no page sums the ledger: each movement appends a delta (an insert,
# which waits on no other transaction, so counting adds no lock to a movement and no deadlock between two),
# and the worker folds the deltas into ``credit_totals`` every few seconds (``tally_ledger_fold_totals``).
# Readers add the deltas not folded yet, a few seconds' worth.
COUNT = """
CREATE FUNCTION tally_ledger_count(p_user text, p_now timestamptz, p_category text, p_movement text, p_amount bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO credit_total_deltas (day, category, movement, amount)
    VALUES ((p_now AT TIME ZONE 'UTC')::date, p_category, p_movement, p_amount)
$$;
"""

# Each fold adds the deltas to their day's row and to the all-time row (day '-infinity'), so the all-time totals
# are read from a few rows, however many days have passed.
FOLD = """
CREATE FUNCTION tally_ledger_fold_totals() RETURNS bigint LANGUAGE sql AS $$
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

# What a debit's entry kind counts as on the dashboard (NULL: not counted; a rollover stays within the wallet).
MOVEMENT_OF = """
CREATE FUNCTION tally_ledger_movement(p_kind text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind WHEN 'spend' THEN 'used' WHEN 'expiry' THEN 'expired' WHEN 'rollover' THEN NULL
                       ELSE 'reversed' END
$$;
"""

# Takes up to p_amount from the user's grants in the order of tally.ledger.credits (the grants named in
# p_first, in that order, then lower priority, sooner expiry, older), skipping expired ones unless named.
# With p_only, only the named grants. Returns what was taken from each; the caller holds the wallet lock.
TAKE = """
CREATE FUNCTION tally_ledger_take(p_user text, p_amount bigint, p_now timestamptz, p_first bigint[],
                                  p_only boolean, OUT grant_id bigint, OUT taken bigint, OUT category text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
    g record;
    left_over bigint := p_amount;
BEGIN
    FOR g IN SELECT c.id, c.remaining, c.category FROM credit_grants c
             WHERE c.user_id = p_user AND c.remaining > 0
               AND (c.id = ANY(p_first) OR (NOT p_only AND (c.expires_at IS NULL OR c.expires_at > p_now)))
             ORDER BY array_position(p_first, c.id), c.priority, c.expires_at, c.id
             FOR UPDATE
    LOOP
        EXIT WHEN left_over <= 0;
        grant_id := g.id;
        category := g.category;
        taken := least(left_over, g.remaining);
        UPDATE credit_grants SET remaining = remaining - taken WHERE id = g.id;
        left_over := left_over - taken;
        RETURN NEXT;
    END LOOP;
END $$;
"""

# A debit of the wallet inside ledger transaction p_tx: one wallet entry per grant drawn (balance_after
# chained), the part no grant covers as one entry without a grant (only with p_allow_debt: reversals), and
# the counter entry on p_counter (none when NULL: a rollover moves credits within the wallet).
DRAW = """
CREATE FUNCTION tally_ledger_draw(p_tx bigint, p_user text, p_amount bigint, p_kind text, p_counter text,
                                  p_now timestamptz, p_first bigint[], p_only boolean, p_allow_debt boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    w record;
    t record;
    bal bigint;
    left_over bigint := p_amount;
BEGIN
    SELECT account_id, balance INTO w FROM wallet_balances WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insufficient_credits: % has no wallet', p_user USING ERRCODE = 'P0001';
    END IF;
    bal := w.balance;
    FOR t IN SELECT * FROM tally_ledger_take(p_user, p_amount, p_now, p_first, p_only) LOOP
        bal := bal - t.taken;
        left_over := left_over - t.taken;
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (p_tx, w.account_id, -t.taken, p_kind, bal, t.grant_id);
        IF tally_ledger_movement(p_kind) IS NOT NULL THEN
            PERFORM tally_ledger_count(p_user, p_now, t.category, tally_ledger_movement(p_kind), t.taken);
        END IF;
    END LOOP;
    IF left_over > 0 THEN
        IF NOT p_allow_debt THEN
            RAISE EXCEPTION 'insufficient_credits: % lacks % of %', p_user, left_over, p_amount USING ERRCODE = 'P0001';
        END IF;
        bal := bal - left_over;
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (p_tx, w.account_id, -left_over, p_kind, bal, NULL);
        PERFORM tally_ledger_count(p_user, p_now, 'paid', 'reversed', left_over);
    END IF;
    UPDATE wallet_balances SET balance = bal, debt = debt + left_over, updated_at = now() WHERE user_id = p_user;
    IF p_counter IS NOT NULL THEN
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (p_tx, (SELECT id FROM ledger_accounts WHERE code = p_counter), p_amount, p_kind, NULL, NULL);
    END IF;
    RETURN bal;
END $$;
"""

# A credit of the wallet inside ledger transaction p_tx: a new grant (which pays the wallet's debt first: that
# part is a wallet entry of its own, without a grant), its wallet entry and the counter entry on p_counter
# (none when NULL).
CREDIT = """
CREATE FUNCTION tally_ledger_credit(p_tx bigint, p_user text, p_amount bigint, p_kind text, p_counter text,
                                    p_source text, p_category text, p_priority integer, p_now timestamptz,
                                    p_expires_at timestamptz, p_subscription text, p_rollover_cap bigint,
                                    OUT grant_id bigint, OUT balance bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w record;
    repaid bigint;
BEGIN
    SELECT account_id, wallet_balances.balance AS bal, debt INTO w FROM wallet_balances
    WHERE user_id = p_user FOR UPDATE;
    repaid := least(w.debt, p_amount);
    INSERT INTO credit_grants (user_id, source, category, amount, remaining, priority, effective_at, expires_at,
                               transaction_id, subscription_id, rollover_cap)
    VALUES (p_user, p_source, p_category, p_amount, p_amount - repaid, p_priority, p_now, p_expires_at, p_tx,
            p_subscription, p_rollover_cap)
    RETURNING id INTO grant_id;
    balance := w.bal + p_amount;
    UPDATE wallet_balances SET balance = tally_ledger_credit.balance, debt = debt - repaid, updated_at = now()
    WHERE user_id = p_user;
    IF repaid > 0 THEN  -- the part that paid the debt is an entry of its own, drawn from no grant
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (p_tx, w.account_id, repaid, p_kind, w.bal + repaid, NULL);
    END IF;
    IF p_amount > repaid THEN
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (p_tx, w.account_id, p_amount - repaid, p_kind, balance, grant_id);
    END IF;
    IF p_counter IS NOT NULL THEN
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (p_tx, (SELECT id FROM ledger_accounts WHERE code = p_counter), -p_amount, p_kind, NULL, NULL);
        -- What a grant pays of the debt was reversed earlier; it is granted all the same.
        PERFORM tally_ledger_count(p_user, p_now, p_category, 'granted', p_amount);
    END IF;
END $$;
"""

# What a spend or a hold may take now: unexpired grants, less the debt (which is never beside a remaining
# grant for long: any grant pays it first).
SPENDABLE = """
CREATE FUNCTION tally_ledger_spendable(p_user text, p_now timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(sum(remaining), 0) - COALESCE((SELECT debt FROM wallet_balances WHERE user_id = p_user), 0)
    FROM credit_grants
    WHERE user_id = p_user AND remaining > 0 AND (expires_at IS NULL OR expires_at > p_now)
$$;
"""

# A spend, one round trip: under the wallet lock, a replay of the reference answers the first spend;
# otherwise it spends if the unexpired, unheld credits cover the amount. outcome: spent | replay | insufficient.
SPEND = """
CREATE FUNCTION tally_ledger_spend(p_user text, p_amount bigint, p_reference text, p_reason text, p_details jsonb,
                                   p_now timestamptz, OUT outcome text, OUT transaction_id bigint,
                                   OUT balance bigint, OUT available bigint, OUT moved bigint, OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    w record;
BEGIN
    SELECT wallet_balances.balance AS bal, account_id INTO w FROM wallet_balances
    WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'insufficient'; balance := 0; available := 0;
        RETURN;
    END IF;
    SELECT t.id, t.description INTO transaction_id, reason FROM ledger_transactions t WHERE t.reference = p_reference;
    IF FOUND THEN
        outcome := 'replay';
        SELECT sum(e.amount), (array_agg(e.balance_after ORDER BY e.id DESC))[1] INTO moved, balance
        FROM ledger_entries e WHERE e.transaction_id = tally_ledger_spend.transaction_id AND e.account_id = w.account_id;
        available := tally_ledger_spendable(p_user, p_now);
        RETURN;
    END IF;
    available := tally_ledger_spendable(p_user, p_now);
    IF available < p_amount THEN
        outcome := 'insufficient'; balance := w.bal;
        RETURN;
    END IF;
    INSERT INTO ledger_transactions (reference, kind, user_id, description, details)
    VALUES (p_reference, 'spend', p_user, p_reason, p_details) RETURNING id INTO transaction_id;
    balance := tally_ledger_draw(transaction_id, p_user, p_amount, 'spend', 'system:spending', p_now, '{}', false,
                                 false);
    outcome := 'spent'; moved := -p_amount; reason := p_reason; available := available - p_amount;
END $$;
"""

# A hold, one round trip: reserve p_amount of the spendable credits, drawn from the grants in order and
# kept on the hold. Idempotent by (user, key). outcome: held | replay | conflict | insufficient.
HOLD = """
CREATE FUNCTION tally_ledger_hold(p_id text, p_user text, p_amount bigint, p_key text, p_reason text,
                                  p_expires_at timestamptz, p_now timestamptz, OUT outcome text, OUT hold_id text,
                                  OUT available bigint)
LANGUAGE plpgsql AS $$
DECLARE
    found_hold record;
    grants bigint[] := '{}';
    amounts bigint[] := '{}';
    t record;
BEGIN
    PERFORM 1 FROM wallet_balances WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'insufficient'; available := 0;
        RETURN;
    END IF;
    SELECT id, amount, reason INTO found_hold FROM credit_holds WHERE user_id = p_user AND idempotency_key = p_key;
    available := tally_ledger_spendable(p_user, p_now);
    IF FOUND THEN
        hold_id := found_hold.id;
        outcome := CASE WHEN found_hold.amount = p_amount AND found_hold.reason IS NOT DISTINCT FROM p_reason
                        THEN 'replay' ELSE 'conflict' END;
        RETURN;
    END IF;
    IF available < p_amount THEN
        outcome := 'insufficient';
        RETURN;
    END IF;
    FOR t IN SELECT * FROM tally_ledger_take(p_user, p_amount, p_now, '{}', false) LOOP
        grants := grants || t.grant_id;
        amounts := amounts || t.taken;
    END LOOP;
    UPDATE wallet_balances SET held = held + p_amount, updated_at = now() WHERE user_id = p_user;
    INSERT INTO credit_holds (id, user_id, idempotency_key, amount, reason, status, expires_at, created_at,
                              grant_ids, grant_amounts)
    VALUES (p_id, p_user, p_key, p_amount, p_reason, 'held', p_expires_at, p_now, grants, amounts);
    outcome := 'held'; hold_id := p_id; available := available - p_amount;
END $$;
"""

# Ends an open hold: capture p_capture of it (spent from the grants it holds, in the order they were drawn)
# and give the rest back to those grants; what goes back to a grant that expired meanwhile expires now, in
# the transaction p_expiry_reference. p_status: captured | released | expired. A hold that is no longer
# open, or whose time is up (for a capture), is not captured: outcome conflict, or expired (the caller reads
# its state).
FINISH = """
CREATE FUNCTION tally_ledger_finish_hold(p_id text, p_status text, p_capture bigint, p_reference text,
                                         p_expiry_reference text, p_now timestamptz, OUT outcome text,
                                         OUT transaction_id bigint, OUT balance bigint)
LANGUAGE plpgsql AS $$
DECLARE
    h record;
    w record;
    g record;
    i integer;
    take bigint;
    back bigint;
    expiry_tx bigint;
    expired bigint := 0;
    left_over bigint := p_capture;
BEGIN
    SELECT user_id INTO h FROM credit_holds WHERE id = p_id;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    SELECT account_id, wallet_balances.balance AS bal INTO w FROM wallet_balances WHERE user_id = h.user_id FOR UPDATE;
    SELECT * INTO h FROM credit_holds WHERE id = p_id FOR UPDATE;
    balance := w.bal;
    IF h.status <> 'held' THEN
        outcome := 'conflict';
        RETURN;
    END IF;
    IF p_status = 'captured' AND h.expires_at <= p_now THEN
        -- Its time is up: the capture loses to the expiry, which happens now.
        p_status := 'expired'; left_over := 0;
    END IF;
    outcome := p_status;
    IF p_status = 'captured' THEN
        INSERT INTO ledger_transactions (reference, kind, user_id, description, details)
        VALUES (p_reference, 'spend', h.user_id, h.reason,
                jsonb_build_object('hold_id', h.id, 'held', h.amount, 'idempotency_key', h.idempotency_key))
        RETURNING id INTO transaction_id;
    END IF;
    FOR i IN 1 .. coalesce(array_length(h.grant_ids, 1), 0) LOOP
        SELECT id, category, expires_at INTO g FROM credit_grants WHERE id = h.grant_ids[i] FOR UPDATE;
        take := least(left_over, h.grant_amounts[i]);
        IF take > 0 THEN
            balance := balance - take;
            INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
            VALUES (transaction_id, w.account_id, -take, 'spend', balance, g.id);
            PERFORM tally_ledger_count(h.user_id, p_now, g.category, 'used', take);
            left_over := left_over - take;
        END IF;
        back := h.grant_amounts[i] - take;
        IF back > 0 AND g.expires_at <= p_now THEN
            IF expiry_tx IS NULL THEN
                INSERT INTO ledger_transactions (reference, kind, user_id, description, details)
                VALUES (p_expiry_reference, 'expiry', h.user_id, 'Expired while held', jsonb_build_object('hold_id', h.id))
                RETURNING id INTO expiry_tx;
            END IF;
            balance := balance - back;
            expired := expired + back;
            INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
            VALUES (expiry_tx, w.account_id, -back, 'expiry', balance, g.id);
            PERFORM tally_ledger_count(h.user_id, p_now, g.category, 'expired', back);
        ELSIF back > 0 THEN
            UPDATE credit_grants SET remaining = remaining + back WHERE id = g.id;
        END IF;
    END LOOP;
    IF p_status = 'captured' THEN
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (transaction_id, (SELECT id FROM ledger_accounts WHERE code = 'system:spending'), p_capture, 'spend',
                NULL, NULL);
    END IF;
    IF expiry_tx IS NOT NULL THEN
        INSERT INTO ledger_entries (transaction_id, account_id, amount, kind, balance_after, grant_id)
        VALUES (expiry_tx, (SELECT id FROM ledger_accounts WHERE code = 'system:expired'), expired, 'expiry',
                NULL, NULL);
    END IF;
    UPDATE wallet_balances SET balance = tally_ledger_finish_hold.balance, held = held - h.amount, updated_at = now()
    WHERE user_id = h.user_id;
    UPDATE credit_holds SET status = p_status, captured = CASE WHEN p_status = 'captured' THEN p_capture ELSE 0 END,
                            finished_at = p_now, transaction_id = tally_ledger_finish_hold.transaction_id
    WHERE id = p_id;
END $$;
"""

FUNCTIONS = ("tally_ledger_finish_hold(text, text, bigint, text, text, timestamptz)",
             "tally_ledger_hold(text, text, bigint, text, text, timestamptz, timestamptz)",
             "tally_ledger_spend(text, bigint, text, text, jsonb, timestamptz)",
             "tally_ledger_spendable(text, timestamptz)",
             ("tally_ledger_credit(bigint, text, bigint, text, text, text, text, integer, timestamptz, timestamptz, "
              "text, bigint)"),
             "tally_ledger_draw(bigint, text, bigint, text, text, timestamptz, bigint[], boolean, boolean)",
             "tally_ledger_take(text, bigint, timestamptz, bigint[], boolean)",
             "tally_ledger_movement(text)", "tally_ledger_count(text, timestamptz, text, text, bigint)",
             "tally_ledger_fold_totals()")


def upgrade() -> None:
    op.add_column("wallet_balances", sa.Column("held", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("wallet_balances", sa.Column("debt", sa.BigInteger(), server_default="0", nullable=False))
    op.create_check_constraint("held_not_negative", "wallet_balances", "held >= 0")
    op.create_check_constraint("debt_not_negative", "wallet_balances", "debt >= 0")

    op.create_table(
        "credit_grants",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.String(255), sa.ForeignKey("users.id", name="fk_credit_grants_user_id_users"),
                  nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        # The transaction that granted it; NULL for the grants the migration made of earlier balances.
        sa.Column("transaction_id", sa.BigInteger(),
                  sa.ForeignKey("ledger_transactions.id", name="fk_credit_grants_transaction_id_ledger_transactions"),
                  nullable=True),
        sa.Column("subscription_id", sa.String(255), nullable=True),
        sa.Column("rollover_cap", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("source IN ('purchase', 'subscription', 'proration', 'promotion', 'adjustment', "
                           "'reinstatement', 'rollover')", name="source"),
        sa.CheckConstraint("category IN ('paid', 'promotional')", name="category"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within"),
    )
    # The draw order, per user, over the grants that still hold credits.
    op.create_index("ix_credit_grants_drawable", "credit_grants", ["user_id", "priority", "expires_at", "id"],
                    postgresql_where=sa.text("remaining > 0"))
    op.create_index("ix_credit_grants_expiring", "credit_grants", ["expires_at"],
                    postgresql_where=sa.text("remaining > 0 AND expires_at IS NOT NULL"))
    op.create_index("ix_credit_grants_transaction_id", "credit_grants", ["transaction_id"])
    op.create_index("ix_credit_grants_user_id_id", "credit_grants", ["user_id", "id"])
    op.add_column("ledger_entries", sa.Column("grant_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_ledger_entries_grant_id", "ledger_entries", ["grant_id"],
                    postgresql_where=sa.text("grant_id IS NOT NULL"))

    op.create_table(
        "credit_holds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(255), sa.ForeignKey("users.id", name="fk_credit_holds_user_id_users"),
                  nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("captured", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("grant_ids", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("grant_amounts", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(),
                  sa.ForeignKey("ledger_transactions.id", name="fk_credit_holds_transaction_id_ledger_transactions"),
                  nullable=True),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_credit_holds_user_id_idempotency_key"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("status IN ('held', 'captured', 'released', 'expired')", name="status"),
        sa.CheckConstraint("captured >= 0 AND captured <= amount", name="captured_within"),
    )
    op.create_index("ix_credit_holds_open_expiry", "credit_holds", ["expires_at"],
                    postgresql_where=sa.text("status = 'held'"))
    op.create_index("ix_credit_holds_open_user", "credit_holds", ["user_id"],
                    postgresql_where=sa.text("status = 'held'"))

    op.create_table(
        "disputes",
        sa.Column("id", sa.String(255), primary_key=True),  # Stripe's dp_ id
        sa.Column("user_id", sa.String(255), sa.ForeignKey("users.id", name="fk_disputes_user_id_users"),
                  nullable=False),
        sa.Column("charge_id", sa.String(255), nullable=False),
        sa.Column("payment_intent_id", sa.String(255), nullable=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id", name="fk_disputes_order_id_orders"),
                  nullable=True),
        sa.Column("subscription_invoice_id", sa.String(255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("evidence_due_by", sa.BigInteger(), nullable=True),
        sa.Column("credits_withdrawn", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_reinstated", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("stripe_created", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_disputes_open", "disputes", ["evidence_due_by"],
                    postgresql_where=sa.text("status IN ('needs_response', 'warning_needs_response', "
                                             "'under_review', 'warning_under_review')"))
    op.create_index("ix_disputes_stripe_created", "disputes", ["stripe_created"])

    # A pack's credit lifetime as sold: fixed on the order, like its coins and price.
    op.add_column("orders", sa.Column("credits_expire_after_days", sa.Integer(), nullable=True))
    op.add_column("subscription_invoices", sa.Column("stripe_payment_intent_id", sa.String(255), nullable=True))
    op.add_column("subscription_invoices",
                  sa.Column("amount_refunded", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("subscription_invoices",
                  sa.Column("credits_clawed_back", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index("ix_subscription_invoices_payment_intent", "subscription_invoices",
                    ["stripe_payment_intent_id"], unique=True,
                    postgresql_where=sa.text("stripe_payment_intent_id IS NOT NULL"))

    accounts = sa.table("ledger_accounts", sa.column("code", sa.String), sa.column("kind", sa.String))
    op.bulk_insert(accounts, [{"code": code, "kind": "system"} for code in NEW_SYSTEM_ACCOUNTS])
    op.create_table(
        "credit_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("movement", sa.String(16), nullable=False),  # granted | used | expired | reversed
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "category", "movement", name="pk_credit_totals"),
    )
    op.create_table(  # appended by each movement, emptied by the fold: no key, no index
        "credit_total_deltas",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("movement", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
    )
    for sql in (COUNT, FOLD, MOVEMENT_OF, TAKE, DRAW, CREDIT, SPENDABLE, SPEND, HOLD, FINISH):
        op.execute(sql)

    # Today's balances become grants: a positive one a never-expiring paid grant, a negative one debt; the
    # dashboard's totals start from them (as granted on the day of the migration).
    op.execute("""
        INSERT INTO credit_grants (user_id, source, category, amount, remaining, priority, expires_at)
        SELECT user_id, 'adjustment', 'paid', balance, balance, 30, NULL FROM wallet_balances WHERE balance > 0""")
    op.execute("UPDATE wallet_balances SET debt = -balance WHERE balance < 0")
    op.execute("""
        INSERT INTO credit_totals (day, category, movement, amount)
        SELECT day, 'paid', 'granted', sum(balance) FROM wallet_balances,
               (VALUES ((now() AT TIME ZONE 'UTC')::date), ('-infinity'::date)) AS days(day)
        GROUP BY day HAVING sum(balance) <> 0""")


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DELETE FROM ledger_accounts WHERE code IN ('system:promotions', 'system:adjustments', "
               "'system:expired', 'system:disputes') AND NOT EXISTS "
               "(SELECT 1 FROM ledger_entries e WHERE e.account_id = ledger_accounts.id)")
    op.drop_column("orders", "credits_expire_after_days")
    op.drop_index("ix_subscription_invoices_payment_intent", table_name="subscription_invoices")
    for column in ("credits_clawed_back", "amount_refunded", "stripe_payment_intent_id"):
        op.drop_column("subscription_invoices", column)
    op.drop_table("credit_total_deltas")
    op.drop_table("credit_totals")
    op.drop_table("disputes")
    op.drop_table("credit_holds")
    op.drop_index("ix_ledger_entries_grant_id", table_name="ledger_entries")
    op.drop_column("ledger_entries", "grant_id")
    op.drop_table("credit_grants")
    op.drop_constraint("ck_wallet_balances_debt_not_negative", "wallet_balances")
    op.drop_constraint("ck_wallet_balances_held_not_negative", "wallet_balances")
    op.drop_column("wallet_balances", "debt")
    op.drop_column("wallet_balances", "held")
