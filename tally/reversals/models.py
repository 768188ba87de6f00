"""``disputes``: each Stripe dispute on a payment Tally credited (a pack order or a subscription invoice), its
state as last re-fetched from Stripe, and the credits it took back (once, reference
``dispute:{dp}:withdrawn``) and gave back when won (once, ``dispute:{dp}:reinstated``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

# Stripe's statuses of a dispute that still waits for the seller or the network.
OPEN_STATUSES = ("needs_response", "warning_needs_response", "under_review", "warning_under_review")


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's dp_ id
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    charge_id: Mapped[str] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    subscription_invoice_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units disputed
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    evidence_due_by: Mapped[int | None] = mapped_column(BigInteger)  # Unix time
    credits_withdrawn: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credits_reinstated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    stripe_created: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_inquiry(self) -> bool:
        """An inquiry (``warning_…``) moves no money, so it takes no credits back."""
        return self.status.startswith("warning_")
