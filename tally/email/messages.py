"""What an email is, as the outbox, its attachments and the SMTP sender pass it along."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str  # plain text
    html: str | None = None  # an HTML alternative of the same message
    attachment_name: str | None = None  # e.g. INV-2026-000001.pdf
    attachment_ref: str | None = None  # rendered when sent or shown (see ``tally.email.attachments``)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
