"""The subscription mirror and its companions.

- ``subscriptions``: one row per Stripe subscription, written only from what Stripe says *now* (every webhook
  re-fetches the subscription under this row's lock, so a stale event can never overwrite a newer state).
  Times are Stripe's unix seconds (on a test clock they are the clock's time, not the wall's).
- ``subscription_checkouts``: our record of each subscription Checkout started (its id keys the Stripe call).
- ``subscription_changes``: each plan change asked through the API; an upgrade carries the prorated credits
  owed, granted once when its proration invoice is paid; a downgrade waits for the period end.
- ``subscription_invoices``: each paid subscription invoice, with the credits it granted (ledger reference
  ``invoice:{in_…}:grant``, unique, so a paid invoice grants exactly once).
- ``dunning_notices``: the reminders owed for a failed invoice, one row per step, due at a Stripe time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Identity, Index, Integer, String, \
    UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

# Access follows Stripe's status: on while active or trialing, and while past_due (Stripe is still retrying);
# off once Stripe gives up (canceled, unpaid), while paused, and for first payments that never succeeded.
ACCESS_STATUSES = frozenset({"active", "trialing", "past_due"})
# A subscription that still exists in Stripe and may come back to active: the user has "a" subscription.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "paused", "incomplete"})


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's sub_ id
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    # The plan in effect: Stripe's price, except while a downgrade waits for the period end (then the old one).
    plan_id: Mapped[str | None] = mapped_column(String(64))
    interval: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(32))
    current_period_start: Mapped[int | None] = mapped_column(BigInteger)
    current_period_end: Mapped[int | None] = mapped_column(BigInteger)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    cancel_at: Mapped[int | None] = mapped_column(BigInteger)
    trial_end: Mapped[int | None] = mapped_column(BigInteger)
    canceled_at: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    pending_plan_id: Mapped[str | None] = mapped_column(String(64))
    pending_interval: Mapped[str | None] = mapped_column(String(8))
    pending_effective_at: Mapped[int | None] = mapped_column(BigInteger)
    test_clock: Mapped[str | None] = mapped_column(String(255))
    stripe_created: Mapped[int] = mapped_column(BigInteger)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_subscriptions_user_id_stripe_created", "user_id", "stripe_created"),)

    @property
    def has_access(self) -> bool:
        return self.status in ACCESS_STATUSES


class SubscriptionCheckout(Base):
    __tablename__ = "subscription_checkouts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4; keys the Stripe call
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[str] = mapped_column(String(64))
    interval: Mapped[str] = mapped_column(String(8))
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SubscriptionChange(Base):
    __tablename__ = "subscription_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4; keys the Stripe call and the grant
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # upgrade | downgrade
    from_plan_id: Mapped[str] = mapped_column(String(64))
    from_interval: Mapped[str] = mapped_column(String(8))
    to_plan_id: Mapped[str] = mapped_column(String(64))
    to_interval: Mapped[str] = mapped_column(String(8))
    proration_date: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # owed on payment
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="requested", server_default="requested")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('upgrade', 'downgrade')", name="kind"),
        CheckConstraint("status IN ('requested', 'applied', 'failed')", name="status"),
        CheckConstraint("credits >= 0", name="credits"),
        Index("ix_subscription_changes_subscription_id", "subscription_id"),
    )


class SubscriptionInvoice(Base):
    __tablename__ = "subscription_invoices"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's in_ id
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(64))  # Stripe's invoice number
    billing_reason: Mapped[str | None] = mapped_column(String(64))
    amount_paid: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    plan_id: Mapped[str | None] = mapped_column(String(64))
    interval: Mapped[str | None] = mapped_column(String(8))
    credits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    period_start: Mapped[int | None] = mapped_column(BigInteger)
    period_end: Mapped[int | None] = mapped_column(BigInteger)
    hosted_invoice_url: Mapped[str | None] = mapped_column(String(2000))
    ledger_transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255))  # the payment, to find its refunds
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credits_clawed_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    paid_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_subscription_invoices_user_id_created_at", "user_id", "created_at"),)


class DunningNotice(Base):
    __tablename__ = "dunning_notices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    step: Mapped[int] = mapped_column(Integer)  # days after the first failure
    due_at: Mapped[int] = mapped_column(BigInteger)  # Stripe time (the test clock's, on a clock)
    test_clock: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="scheduled", server_default="scheduled")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("invoice_id", "step", name="uq_dunning_notices_invoice_id_step"),
        CheckConstraint("status IN ('scheduled', 'sent', 'skipped')", name="status"),
        # The scan for due notices reads only scheduled rows, in due order: O(due rows).
        Index("ix_dunning_notices_due", "test_clock", "due_at", postgresql_where=text("status = 'scheduled'")),
    )


class TestClockTime(Base):
    """The frozen time of each Stripe test clock Tally has seen (from ``test_helpers.test_clock.ready`` and from
    objects on the clock), so that notices due in clock time fire when the clock is advanced, without asking
    Stripe on every scan. Test mode only: live objects never have a clock."""

    __tablename__ = "test_clock_times"
    __test__ = False  # not a pytest class

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # clock_…
    frozen_time: Mapped[int] = mapped_column(BigInteger)
