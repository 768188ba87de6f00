"""A price change (one plan and interval moving to a new price) and one row per subscription it moves.

An item is ``scheduled`` when its Stripe subscription schedule is in place, ``noticed`` once its notice email is
queued; whether it has switched is Stripe's fact, read from the mirrored subscription's price. One item per
(change, subscription), so running the same migration again adds nobody twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, DateTime, ForeignKey, Identity, Index, Integer, String,
                        UniqueConstraint, func, text)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class PriceChange(Base):
    __tablename__ = "price_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4; keys the Stripe calls
    plan_id: Mapped[str] = mapped_column(String(64))
    interval: Mapped[str] = mapped_column(String(8))
    to_price_id: Mapped[str] = mapped_column(String(255))
    to_amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    effective_at: Mapped[int] = mapped_column(BigInteger)  # unix time; switches at the first renewal from then
    notice_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PriceChangeItem(Base):
    __tablename__ = "price_change_items"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("price_changes.id"))
    subscription_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    from_price_id: Mapped[str] = mapped_column(String(255))
    from_amount: Mapped[int] = mapped_column(BigInteger)
    switch_at: Mapped[int] = mapped_column(BigInteger)  # the renewal that bills the new price
    notice_at: Mapped[int] = mapped_column(BigInteger)  # switch_at − notice days
    test_clock: Mapped[str | None] = mapped_column(String(255))  # times of a test clock's subscription are its
    schedule_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="scheduled", server_default="scheduled")
    noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("change_id", "subscription_id", name="uq_price_change_items_change_id_subscription_id"),
        CheckConstraint("status IN ('scheduled', 'noticed', 'skipped')", name="status"),
        Index("ix_price_change_items_due", "test_clock", "notice_at", postgresql_where=text("status = 'scheduled'")),
    )
