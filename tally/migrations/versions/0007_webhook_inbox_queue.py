"""The webhook inbox is the queue of first delivery attempts: workers claim new events (pending, never
tried) oldest first with ``FOR UPDATE SKIP LOCKED``; this partial index keeps that claim a short index
scan however many events the table holds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_events_new", "webhook_events", ["received_at"],
                    postgresql_where=sa.text("status = 'pending' AND attempts = 0"))


def downgrade() -> None:
    op.drop_index("ix_webhook_events_new", table_name="webhook_events")
