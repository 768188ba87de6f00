"""Discounts on pack orders (promotion codes typed on Stripe Checkout; issue 18).

``orders.amount`` becomes what the buyer is charged: the catalog's price at creation, the discounted price once
a paid session says a promotion code took something off. Then ``amount_subtotal`` keeps the catalog's price
(NULL while there is no discount: ``amount`` is the price) and ``amount_discount`` what the code took off, with
the code (and its Stripe id) that did. A code can take the
whole price (a 100 % coupon), so the amount may be zero; the coins stay the pack's. Invoices record the same
discount (their lines carry it too).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("amount_subtotal", sa.BigInteger(), nullable=True))
    op.add_column("orders", sa.Column("amount_discount", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("orders", sa.Column("promotion_code", sa.String(255), nullable=True))
    op.add_column("orders", sa.Column("stripe_promotion_code_id", sa.String(255), nullable=True))
    op.drop_constraint(op.f("ck_orders_positive"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_positive"), "orders", "amount >= 0 AND coins > 0 AND bonus >= 0")
    op.create_check_constraint(op.f("ck_orders_discount_range"), "orders",
                               "amount_discount >= 0 AND (amount_subtotal IS NOT NULL OR amount_discount = 0)")
    op.create_index("ix_orders_stripe_promotion_code_id", "orders", ["stripe_promotion_code_id"],
                    postgresql_where=sa.text("stripe_promotion_code_id IS NOT NULL"))
    op.add_column("invoices", sa.Column("amount_discount", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("invoices", "amount_discount")
    op.drop_index("ix_orders_stripe_promotion_code_id", "orders")
    op.drop_constraint(op.f("ck_orders_discount_range"), "orders", type_="check")
    op.drop_constraint(op.f("ck_orders_positive"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_positive"), "orders", "amount > 0 AND coins > 0 AND bonus >= 0")
    for column in ("stripe_promotion_code_id", "promotion_code", "amount_discount", "amount_subtotal"):
        op.drop_column("orders", column)
