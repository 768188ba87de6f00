"""Two indexes for what reads the inbox besides the workers, so that neither scans every event ever received:

- ``(type, status)``: the metrics scrape and the dashboard count events by type and status; with this index
  they are index-only scans of a narrow index instead of reads of every payload;
- the Stripe customer of failed-payment events (``invoice.payment_failed``, ``payment_intent.payment_failed``):
  the account page lists a subscriber's failed renewal attempts and their reasons from those events
  (``tally.pages.billing``); partial, so it holds only those few events.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FAILED_PAYMENTS = "type IN ('invoice.payment_failed', 'payment_intent.payment_failed')"


def upgrade() -> None:
    op.create_index("ix_webhook_events_type_status", "webhook_events", ["type", "status"])
    op.create_index("ix_webhook_events_failed_payment_customer", "webhook_events",
                    [sa.text("(payload #>> '{data,object,customer}')"), "type", "stripe_created"],
                    postgresql_where=sa.text(FAILED_PAYMENTS))


def downgrade() -> None:
    op.drop_index("ix_webhook_events_failed_payment_customer", table_name="webhook_events")
    op.drop_index("ix_webhook_events_type_status", table_name="webhook_events")
