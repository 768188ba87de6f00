"""Price changes for existing subscribers (issue 18): ``price_changes`` and ``price_change_items``
(see ``tally.price_changes.models``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_changes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("to_price_id", sa.String(255), nullable=False),
        sa.Column("to_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("effective_at", sa.BigInteger(), nullable=False),
        sa.Column("notice_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_changes")))
    op.create_table(
        "price_change_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("change_id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("from_price_id", sa.String(255), nullable=False),
        sa.Column("from_amount", sa.BigInteger(), nullable=False),
        sa.Column("switch_at", sa.BigInteger(), nullable=False),
        sa.Column("notice_at", sa.BigInteger(), nullable=False),
        sa.Column("test_clock", sa.String(255), nullable=True),
        sa.Column("schedule_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), server_default="scheduled", nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('scheduled', 'noticed', 'skipped')", name=op.f("ck_price_change_items_status")),
        sa.ForeignKeyConstraint(["change_id"], ["price_changes.id"],
                                name=op.f("fk_price_change_items_change_id_price_changes")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_price_change_items_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_change_items")),
        sa.UniqueConstraint("change_id", "subscription_id", name="uq_price_change_items_change_id_subscription_id"))
    op.create_index("ix_price_change_items_due", "price_change_items", ["test_clock", "notice_at"],
                    postgresql_where=sa.text("status = 'scheduled'"))


def downgrade() -> None:
    op.drop_index("ix_price_change_items_due", "price_change_items")
    op.drop_table("price_change_items")
    op.drop_table("price_changes")
