"""Subscriptions (mirror, checkouts, changes, paid invoices), dunning notices and the email outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('test_clock_times',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('frozen_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_clock_times'))
    )
    op.create_table('outbox_emails',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('dedupe_key', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'sent', 'caught', 'failed')", name=op.f('ck_outbox_emails_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_emails')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_emails_dedupe_key'))
    )
    op.create_index('ix_outbox_emails_queued', 'outbox_emails', ['id'], unique=False,
                    postgresql_where=sa.text("status = 'queued'"))
    op.create_table('dunning_notices',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('invoice_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.BigInteger(), nullable=False),
    sa.Column('test_clock', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='scheduled', nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('scheduled', 'sent', 'skipped')", name=op.f('ck_dunning_notices_status')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_dunning_notices_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_notices')),
    sa.UniqueConstraint('invoice_id', 'step', name='uq_dunning_notices_invoice_id_step')
    )
    op.create_index('ix_dunning_notices_due', 'dunning_notices', ['test_clock', 'due_at'], unique=False, postgresql_where=sa.text("status = 'scheduled'"))
    op.create_table('subscription_changes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('subscription_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('from_plan_id', sa.String(length=64), nullable=False),
    sa.Column('from_interval', sa.String(length=8), nullable=False),
    sa.Column('to_plan_id', sa.String(length=64), nullable=False),
    sa.Column('to_interval', sa.String(length=8), nullable=False),
    sa.Column('proration_date', sa.BigInteger(), nullable=False),
    sa.Column('period_start', sa.BigInteger(), nullable=False),
    sa.Column('period_end', sa.BigInteger(), nullable=False),
    sa.Column('credits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='requested', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('upgrade', 'downgrade')", name=op.f('ck_subscription_changes_kind')),
    sa.CheckConstraint("status IN ('requested', 'applied', 'failed')", name=op.f('ck_subscription_changes_status')),
    sa.CheckConstraint('credits >= 0', name=op.f('ck_subscription_changes_credits')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_subscription_changes_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_changes')),
    sa.UniqueConstraint('stripe_invoice_id', name=op.f('uq_subscription_changes_stripe_invoice_id'))
    )
    op.create_index('ix_subscription_changes_subscription_id', 'subscription_changes', ['subscription_id'], unique=False)
    op.create_table('subscription_checkouts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=False),
    sa.Column('interval', sa.String(length=8), nullable=False),
    sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_subscription_checkouts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_checkouts')),
    sa.UniqueConstraint('stripe_checkout_session_id', name=op.f('uq_subscription_checkouts_stripe_checkout_session_id'))
    )
    op.create_table('subscription_invoices',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('subscription_id', sa.String(length=255), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=True),
    sa.Column('billing_reason', sa.String(length=64), nullable=True),
    sa.Column('amount_paid', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=True),
    sa.Column('interval', sa.String(length=8), nullable=True),
    sa.Column('credits', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('period_start', sa.BigInteger(), nullable=True),
    sa.Column('period_end', sa.BigInteger(), nullable=True),
    sa.Column('hosted_invoice_url', sa.String(length=2000), nullable=True),
    sa.Column('ledger_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('paid_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_subscription_invoices_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_invoices'))
    )
    op.create_index('ix_subscription_invoices_user_id_created_at', 'subscription_invoices', ['user_id', 'created_at'], unique=False)
    op.create_table('subscriptions',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
    sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
    sa.Column('plan_id', sa.String(length=64), nullable=True),
    sa.Column('interval', sa.String(length=8), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('current_period_start', sa.BigInteger(), nullable=True),
    sa.Column('current_period_end', sa.BigInteger(), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('cancel_at', sa.BigInteger(), nullable=True),
    sa.Column('trial_end', sa.BigInteger(), nullable=True),
    sa.Column('canceled_at', sa.BigInteger(), nullable=True),
    sa.Column('ended_at', sa.BigInteger(), nullable=True),
    sa.Column('pending_plan_id', sa.String(length=64), nullable=True),
    sa.Column('pending_interval', sa.String(length=8), nullable=True),
    sa.Column('pending_effective_at', sa.BigInteger(), nullable=True),
    sa.Column('test_clock', sa.String(length=255), nullable=True),
    sa.Column('stripe_created', sa.BigInteger(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_subscriptions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions'))
    )
    op.create_index('ix_subscriptions_user_id_stripe_created', 'subscriptions', ['user_id', 'stripe_created'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_subscriptions_user_id_stripe_created', table_name='subscriptions')
    op.drop_table('subscriptions')
    op.drop_index('ix_subscription_invoices_user_id_created_at', table_name='subscription_invoices')
    op.drop_table('subscription_invoices')
    op.drop_table('subscription_checkouts')
    op.drop_index('ix_subscription_changes_subscription_id', table_name='subscription_changes')
    op.drop_table('subscription_changes')
    op.drop_index('ix_dunning_notices_due', table_name='dunning_notices', postgresql_where=sa.text("status = 'scheduled'"))
    op.drop_table('dunning_notices')
    op.drop_index('ix_outbox_emails_queued', table_name='outbox_emails', postgresql_where=sa.text("status = 'queued'"))
    op.drop_table('outbox_emails')
    op.drop_table('test_clock_times')
