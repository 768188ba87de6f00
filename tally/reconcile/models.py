"""Where reconciliation got to in Stripe's event list, and what its last run reported."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class ReconcileCursor(Base):
    __tablename__ = "reconcile_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "stripe": one Stripe account per Tally
    cursor: Mapped[int | None] = mapped_column(BigInteger)  # unix seconds: events after this are listed next
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
