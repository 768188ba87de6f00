"""The outbox: every email Tally sends, once per ``dedupe_key``.

With ``TALLY_SMTP_URL`` set a row is ``queued`` and a worker job sends it (``sent`` after SMTP accepted it);
without one (sandbox mode, development) it is ``caught`` and shown on ``/outbox`` instead of being sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class OutboxEmail(Base):
    __tablename__ = "outbox_emails"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)  # e.g. dunning:in_…:3
    kind: Mapped[str] = mapped_column(String(32))  # dunning | trial_ending | …
    user_id: Mapped[str | None] = mapped_column(String(255))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)  # plain text, always there
    html_body: Mapped[str | None] = mapped_column(Text)  # its HTML alternative, when the email has one
    attachment_name: Mapped[str | None] = mapped_column(String(255))  # e.g. INV-2026-000001.pdf
    attachment_ref: Mapped[str | None] = mapped_column(String(255))  # what renders it: invoice:INV-2026-000001
    status: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sent', 'caught', 'failed')", name="status"),
        Index("ix_outbox_emails_queued", "id", postgresql_where=text("status = 'queued'")),  # the sender's scan
    )
