"""Tax on orders and invoices (issue 18): what Stripe Tax computed on a paid Checkout Session.

- ``orders.amount_tax`` (within ``amount``) and ``orders.tax_details`` (per rate, the buyer's address and tax IDs);
- ``invoices.amount_tax``, ``tax_lines``, ``customer_address``, ``customer_tax_ids`` and ``reverse_charge``, which the
  PDF prints (net, each tax, gross, and the reverse-charge wording).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("amount_tax", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("orders", sa.Column("tax_details", JSONB(), nullable=True))
    op.create_check_constraint(op.f("ck_orders_tax_range"), "orders", "amount_tax >= 0")
    op.add_column("invoices", sa.Column("amount_tax", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("invoices", sa.Column("tax_lines", JSONB(), server_default="[]", nullable=False))
    op.add_column("invoices", sa.Column("customer_address", JSONB(), nullable=True))
    op.add_column("invoices", sa.Column("customer_tax_ids", JSONB(), server_default="[]", nullable=False))
    op.add_column("invoices", sa.Column("reverse_charge", sa.Boolean(), server_default="false", nullable=False))


def downgrade() -> None:
    for column in ("reverse_charge", "customer_tax_ids", "customer_address", "tax_lines", "amount_tax"):
        op.drop_column("invoices", column)
    op.drop_constraint(op.f("ck_orders_tax_range"), "orders", type_="check")
    op.drop_column("orders", "tax_details")
    op.drop_column("orders", "amount_tax")
