"""Webhook retries wait in the inbox (issue 16, item 6): ``webhook_events.next_attempt_at``.

A failed event used to be retried by a procrastinate job scheduled with backoff, and a sweeper re-queued pending
events whose job was lost. Now a failed try sets the event's ``next_attempt_at`` and the inbox workers claim it
once that time has passed, like a new event: one queue. Retries already waiting as jobs keep their time on their
event, and the webhook jobs (and the sweeper's) go.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_events", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("""
        UPDATE webhook_events e SET next_attempt_at = j.scheduled_at
        FROM procrastinate_jobs j
        WHERE j.task_name = 'webhooks:process_event' AND j.status = 'todo' AND j.args ->> 'event_id' = e.id
          AND e.status = 'pending'""")
    op.execute("DELETE FROM procrastinate_jobs WHERE task_name IN ('webhooks:process_event', 'webhooks:sweep') "
               "AND status <> 'doing'")
    op.drop_index("ix_webhook_events_new", table_name="webhook_events")
    op.create_index("ix_webhook_events_pending", "webhook_events", ["received_at"],
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index("ix_webhook_events_pending", table_name="webhook_events")
    op.create_index("ix_webhook_events_new", "webhook_events", ["received_at"],
                    postgresql_where=sa.text("status = 'pending' AND attempts = 0"))
    op.drop_column("webhook_events", "next_attempt_at")
