"""An order: one attempt to buy one pack, with the price copied from the catalog at creation, so later
catalog edits never change what a paid order granted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

# pending → paid → (refunded) ; pending → failed | expired. Money received always wins: a paid session
# fulfils an order that was marked failed or expired before (the events raced).
ORDER_STATUSES = ("pending", "paid", "failed", "expired", "refunded")
# How the order is paid: a Stripe Checkout Session (hosted page), or a PaymentIntent the app's own page
# confirms (Stripe Elements, local methods). Either way one payment fulfils it, through the same code.
ORDER_KINDS = ("checkout", "payment_intent")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4, also Stripe metadata.order_id
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    pack_id: Mapped[str] = mapped_column(String(64))
    pack_name: Mapped[str] = mapped_column(String(200))
    # What the buyer is charged (minor units): the catalog's price until a paid session says a promotion code
    # took ``amount_discount`` off it; ``amount_subtotal`` keeps the catalog's price. The coins never change.
    amount: Mapped[int] = mapped_column(BigInteger)
    amount_subtotal: Mapped[int | None] = mapped_column(BigInteger)  # the price, set with a discount or tax
    amount_discount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Tax Stripe computed (automatic tax): in ``amount`` (added on top when the price is exclusive); per rate,
    # with the buyer's billing address and tax IDs, in ``tax_details`` (see ``tally.orders.taxes``).
    amount_tax: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    promotion_code: Mapped[str | None] = mapped_column(String(255))  # the code the buyer typed, e.g. LAUNCH20
    stripe_promotion_code_id: Mapped[str | None] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    coins: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    kind: Mapped[str] = mapped_column(String(16), default="checkout", server_default="checkout")
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    coins_clawed_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credits_expire_after_days: Mapped[int | None] = mapped_column(Integer)  # the pack's credit lifetime, as sold
    failure_message: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(16))  # Checkout's locale for this order (receipts too)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'paid', 'failed', 'expired', 'refunded')", name="status"),
        CheckConstraint("amount >= 0 AND coins > 0 AND bonus >= 0", name="positive"),
        CheckConstraint("amount_discount >= 0 AND (amount_subtotal IS NOT NULL OR amount_discount = 0)",
                        name="discount_range"),
        CheckConstraint("amount_tax >= 0", name="tax_range"),
        CheckConstraint("kind IN ('checkout', 'payment_intent')", name="kind"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_range"),
        Index("ix_orders_user_id_created_at", "user_id", "created_at"),
        Index("ix_orders_stripe_promotion_code_id", "stripe_promotion_code_id",
              postgresql_where=text("stripe_promotion_code_id IS NOT NULL")),
    )

    @property
    def price_before_discount(self) -> int:
        return self.amount if self.amount_subtotal is None else self.amount_subtotal

    @property
    def total_coins(self) -> int:
        return self.coins + self.bonus
