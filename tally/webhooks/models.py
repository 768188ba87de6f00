"""The webhook inbox: every verified event once, keyed by Stripe's event id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

# pending → processed | ignored (no handler) | failed (after the last retry); replay sets pending again
EVENT_STATUSES = ("pending", "processed", "ignored", "failed")


class WebhookEvent(Base):
    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's evt_ id
    type: Mapped[str] = mapped_column(String(255))
    livemode: Mapped[bool] = mapped_column(default=False)
    stripe_created: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # After a failed try: not claimed before this (the backoff). Null: due as soon as it is pending.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_webhook_events_status_received", "status", "received_at"),
        # the queue the inbox workers claim from (tally.webhooks.service.process_due_events)
        Index("ix_webhook_events_pending", "received_at", postgresql_where=text("status = 'pending'")),
        # counts by type and status (metrics, dashboard), and a customer's failed payments (the account page)
        Index("ix_webhook_events_type_status", "type", "status"),
        Index("ix_webhook_events_failed_payment_customer", text("(payload #>> '{data,object,customer}')"), "type",
              "stripe_created",
              postgresql_where=text("type IN ('invoice.payment_failed', 'payment_intent.payment_failed')")),
    )
