"""Read-only queries for the account page's billing sections, over what Tally already stores. Nothing here
writes and nothing here calls Stripe.

- Invoices: Tally's own invoices for pack orders (``invoices``, PDF rendered by Tally) and Stripe's invoices
  for subscriptions (``subscription_invoices``, recorded once each is paid; Stripe is the invoicing party,
  so they link to Stripe's hosted invoice page), newest first in one list with one keyset cursor.
- Subscription payments: each paid subscription invoice with an amount (``subscription_invoices``), and
  each failed attempt: an ``invoice.payment_failed`` event in the webhook inbox for the user's Stripe
  customer (a renewal, a plan change, a first payment). The reason is not on the invoice: it is the
  ``last_payment_error`` of the invoice's PaymentIntent, whose ``payment_intent.payment_failed`` event
  Stripe sends just before (same customer, amount and currency; not a pack order's). When that event is
  missing the attempt is shown without a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..customers.models import User
from ..errors import InvalidRequest
from ..invoices.pdf import status_of
from ..orders.models import Order
from ..subscriptions.models import Subscription, SubscriptionInvoice

# How long before an ``invoice.payment_failed`` event the PaymentIntent's failure may be (they are sent
# together; the margin covers retries and slow deliveries without reaching the previous attempt, days away).
REASON_WINDOW_SECONDS = 600
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


# -- invoices ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvoiceRow:
    source: str  # "order": Tally's invoice of a pack order | "subscription": Stripe's invoice of a subscription
    key: str  # invoices.id or Stripe's in_ id
    number: str
    issued_at: datetime
    amount: int  # minor units
    currency: str
    status: str  # "Paid", "Refunded", "Paid, partly refunded"
    hosted_url: str | None  # Stripe's hosted invoice page (subscriptions)

    @property
    def cursor(self) -> str:
        # Whole microseconds (PostgreSQL's precision), computed without floats so the row compares equal.
        return f"{(self.issued_at - EPOCH) // MICROSECOND}.{self.source[0]}.{self.key}"


@dataclass(frozen=True)
class InvoicePage:
    rows: list[InvoiceRow]
    next_cursor: str | None


# Subscription invoices are dated by Stripe's paid_at (a test clock's time on a clock), else when recorded.
_INVOICES = text("""
    SELECT * FROM (
        SELECT 'order' AS source, i.id::text AS key, i.number, i.issued_at AS issued_at, i.amount, i.currency,
               o.status AS order_status, o.amount_refunded, NULL AS hosted_url
          FROM invoices i JOIN orders o ON o.id = i.order_id
         WHERE i.user_id = :user_id
        UNION ALL
        SELECT 'subscription', s.id, COALESCE(s.number, s.id), COALESCE(to_timestamp(s.paid_at), s.created_at),
               s.amount_paid, s.currency, 'paid', 0, s.hosted_invoice_url
          FROM subscription_invoices s
         WHERE s.user_id = :user_id
    ) AS both_kinds
    WHERE CAST(:after_at AS timestamptz) IS NULL
       OR (issued_at, source, key) < (CAST(:after_at AS timestamptz), CAST(:after_source AS text),
                                      CAST(:after_key AS text))
    ORDER BY issued_at DESC, source DESC, key DESC
    LIMIT :limit""")

_SOURCES = {"o": "order", "s": "subscription"}


def parse_invoice_cursor(cursor: str | None) -> tuple[datetime, str, str] | None:
    """``<microseconds>.<o|s>.<key>`` (opaque to users; it only comes from the page's own links)."""
    if cursor is None:
        return None
    micros, _, rest = cursor.partition(".")
    source, _, key = rest.partition(".")
    if not micros.isdigit() or len(micros) > 19 or source not in _SOURCES or not key or len(key) > 255 \
            or not key.isascii() or not key.replace("_", "").isalnum():
        raise InvalidRequest("Invalid cursor.", param="inv")
    return EPOCH + int(micros) * MICROSECOND, _SOURCES[source], key


async def list_billing_invoices(session: AsyncSession, user_id: str, *, limit: int,
                                after: tuple[datetime, str, str] | None = None) -> InvoicePage:
    """The user's invoices of both kinds, newest first, ``limit`` per page."""
    after_at, after_source, after_key = after or (None, None, None)
    rows = (await session.execute(_INVOICES, {
        "user_id": user_id, "limit": limit + 1, "after_at": after_at, "after_source": after_source,
        "after_key": after_key})).mappings().all()
    page = [InvoiceRow(source=r["source"], key=r["key"], number=r["number"], issued_at=r["issued_at"],
                       amount=int(r["amount"]), currency=r["currency"],
                       status=status_of(r["order_status"], int(r["amount"]), int(r["amount_refunded"])).label,
                       hosted_url=r["hosted_url"]) for r in rows[:limit]]
    return InvoicePage(page, page[-1].cursor if len(rows) > limit else None)


# -- payment history ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaymentRow:
    at: datetime
    description: str
    amount: int
    currency: str
    status: str  # paid | refunded | failed | expired | pending
    reason: str | None = None  # why it failed (the bank's or Stripe's words), when known
    note: str | None = None  # e.g. "Attempt 2; Stripe retries on …"
    amount_refunded: int = 0


@dataclass(frozen=True)
class PaymentHistory:
    rows: list[PaymentRow]
    has_more: bool


BILLING_REASONS = {"subscription_cycle": "Subscription renewal", "subscription_create": "First subscription payment",
                   "subscription_update": "Subscription plan change"}

_FAILED_SUBSCRIPTION_PAYMENTS = text("""
    SELECT e.stripe_created,
           e.payload #> '{data,object}' AS invoice,
           (SELECT p.payload #>> '{data,object,last_payment_error,message}'
              FROM webhook_events p
             WHERE p.type = 'payment_intent.payment_failed'
               AND p.payload #>> '{data,object,customer}' = :customer
               AND p.payload #>> '{data,object,metadata,order_id}' IS NULL
               AND p.payload #>> '{data,object,currency}' = e.payload #>> '{data,object,currency}'
               AND p.payload #>> '{data,object,amount}' = e.payload #>> '{data,object,amount_due}'
               AND p.stripe_created BETWEEN e.stripe_created - :window AND e.stripe_created
             ORDER BY p.stripe_created DESC, p.received_at DESC
             LIMIT 1) AS reason
      FROM webhook_events e
     WHERE e.type = 'invoice.payment_failed'
       AND e.payload #>> '{data,object,customer}' = :customer
     ORDER BY e.stripe_created DESC, e.received_at DESC
     LIMIT :limit""")


async def failed_subscription_payments(session: AsyncSession, user_id: str, *, limit: int) -> list[PaymentRow]:
    """The user's failed subscription invoice payments, newest first. Only users who ever had a subscription
    are looked up (the inbox is not indexed by customer; everyone else costs one indexed lookup)."""
    subscribed = await session.scalar(select(func.count()).select_from(
        select(Subscription.id).where(Subscription.user_id == user_id).limit(1).subquery()))
    customer = await session.scalar(select(User.stripe_customer_id).where(User.id == user_id))
    if not subscribed or not customer:
        return []
    rows = (await session.execute(_FAILED_SUBSCRIPTION_PAYMENTS, {
        "customer": customer, "limit": limit, "window": REASON_WINDOW_SECONDS})).all()
    return [_failed_payment(int(created), invoice, reason) for created, invoice, reason in rows]


def _failed_payment(created: int, invoice: dict[str, Any], reason: str | None) -> PaymentRow:
    notes = []
    attempt = int(invoice.get("attempt_count") or 0)
    if attempt > 1:
        notes.append(f"Attempt {attempt}.")
    retry = invoice.get("next_payment_attempt")
    if isinstance(retry, int):
        notes.append(f"Stripe retries on {datetime.fromtimestamp(retry, UTC):%d %b %Y}.")
    return PaymentRow(at=datetime.fromtimestamp(created, UTC),
                      description=_invoice_description(invoice.get("billing_reason"), invoice.get("number")),
                      amount=int(invoice.get("amount_due") or 0), currency=str(invoice.get("currency") or "usd"),
                      status="failed", reason=reason or "The payment failed.", note=" ".join(notes) or None)


async def paid_subscription_payments(session: AsyncSession, user_id: str, *, limit: int) -> list[PaymentRow]:
    """The user's paid subscription invoices with money in them (a trial's zero invoice is no payment)."""
    rows = (await session.scalars(
        select(SubscriptionInvoice).where(SubscriptionInvoice.user_id == user_id, SubscriptionInvoice.amount_paid > 0)
        .order_by(SubscriptionInvoice.created_at.desc()).limit(limit))).all()
    return [PaymentRow(at=datetime.fromtimestamp(r.paid_at, UTC) if r.paid_at else r.created_at,
                       description=_invoice_description(r.billing_reason, r.number), amount=r.amount_paid,
                       currency=r.currency, status="paid") for r in rows]


def _invoice_description(billing_reason: str | None, number: str | None) -> str:
    what = BILLING_REASONS.get(str(billing_reason), "Subscription invoice")
    return f"{what} ({number})" if number else what


def order_payment(order: Order) -> PaymentRow:
    return PaymentRow(at=order.created_at, description=order.pack_name, amount=order.amount,
                      currency=order.currency, status=order.status, reason=order.failure_message,
                      amount_refunded=order.amount_refunded)


def payment_history(orders: list[Order], orders_more: bool, subscription_payments: list[PaymentRow], *,
                    limit: int) -> PaymentHistory:
    """Pack orders (every status) and subscription payments (paid and failed) in one list, newest first.
    Each source was read with ``limit`` rows, so the first ``limit`` of the merge are the newest overall."""
    rows = sorted([order_payment(o) for o in orders] + subscription_payments, key=lambda r: r.at, reverse=True)
    return PaymentHistory(rows[:limit], orders_more or len(rows) > limit)
