"""Subscription history: one row each time a subscription's plan, interval or status changes, written by a
trigger on ``subscriptions`` so that every writer of the mirror (webhooks, the API, the portal's changes seen
through webhooks) is covered without any of them knowing. The operator dashboard computes MRR at any past
moment and its movement (new, expansion, contraction, churn) from it. Existing subscriptions get one row,
as of their last sync.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RECORD = """
CREATE FUNCTION tally_subscription_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.plan_id IS DISTINCT FROM OLD.plan_id OR NEW.interval IS DISTINCT FROM OLD.interval
            OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO subscription_history (subscription_id, user_id, plan_id, interval, status)
        VALUES (NEW.id, NEW.user_id, NEW.plan_id, NEW.interval, NEW.status);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER subscriptions_history AFTER INSERT OR UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION tally_subscription_history();
"""


def upgrade() -> None:
    op.create_table(
        "subscription_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=True),
        sa.Column("interval", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_history")),
    )
    op.create_index("ix_subscription_history_recorded_at", "subscription_history", ["recorded_at", "id"])
    op.execute(RECORD)
    op.execute("""INSERT INTO subscription_history (subscription_id, user_id, plan_id, interval, status, recorded_at)
                  SELECT id, user_id, plan_id, interval, status, synced_at FROM subscriptions""")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS subscriptions_history ON subscriptions")
    op.execute("DROP FUNCTION IF EXISTS tally_subscription_history()")
    op.drop_index("ix_subscription_history_recorded_at", table_name="subscription_history")
    op.drop_table("subscription_history")
