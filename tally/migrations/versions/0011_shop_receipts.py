"""Receipts and notices (issue 18): emails with an HTML part and an attachment, and the buyer's language.

- ``outbox_emails.html_body``: the HTML alternative of ``body`` (plain text stays the required part);
- ``outbox_emails.attachment_name`` / ``attachment_ref``: a file sent with the email, rendered when it is sent
  or viewed (``invoice:INV-…`` is that invoice's PDF), so fulfilment never waits for a PDF to render;
- ``orders.locale`` and ``users.locale``: the Checkout locale the buyer asked for (``en``, ``zh``, …), which
  receipts and notices use for words, dates and amounts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox_emails", sa.Column("html_body", sa.Text(), nullable=True))
    op.add_column("outbox_emails", sa.Column("attachment_name", sa.String(255), nullable=True))
    op.add_column("outbox_emails", sa.Column("attachment_ref", sa.String(255), nullable=True))
    op.add_column("orders", sa.Column("locale", sa.String(16), nullable=True))
    op.add_column("users", sa.Column("locale", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "locale")
    op.drop_column("orders", "locale")
    for column in ("attachment_ref", "attachment_name", "html_body"):
        op.drop_column("outbox_emails", column)
