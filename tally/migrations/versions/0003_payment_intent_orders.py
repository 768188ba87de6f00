"""Orders paid by PaymentIntents: ``orders.kind`` says whether a Checkout Session or a PaymentIntent that
the app's own page confirms pays the order. Existing orders are Checkout orders.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("kind", sa.String(length=16), server_default="checkout", nullable=False))
    op.create_check_constraint(op.f("ck_orders_kind"), "orders", "kind IN ('checkout', 'payment_intent')")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_orders_kind"), "orders", type_="check")
    op.drop_column("orders", "kind")
