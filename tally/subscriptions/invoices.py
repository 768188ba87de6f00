"""Subscription credits: each paid subscription invoice grants, once (ledger reference ``invoice:{in_…}:grant``),
the credits of every non-proration line's plan price × quantity: the first period, each renewal, the new cycle
of a month → year switch. Lines of amount 0 (a trial period) grant nothing: credits are paid value, a trial gives
access only. Proration lines grant nothing here; an upgrade's prorated difference is granted per change
(``prorations``). Each paid invoice is recorded in ``subscription_invoices`` with Stripe's number and hosted URL
(Stripe is the invoicing party for subscriptions; Tally's gap-free ``INV-…`` numbers are for its own pack
orders)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..stripe_gateway import StripeGateway, object_id, stripe_call
from . import mirror
from .credits import grant_invoice, paid_for
from .models import Subscription, SubscriptionInvoice
from .plans import PlanBook


def subscription_of(invoice: dict[str, Any]) -> str | None:
    details = ((invoice.get("parent") or {}).get("subscription_details") or {})
    return object_id(details.get("subscription")) or object_id(invoice.get("subscription"))


async def retrieve_invoice(client: StripeGateway, invoice_id: str) -> dict[str, Any]:
    """The invoice with its payments (their PaymentIntent is how a refund or dispute finds the invoice)."""
    async with stripe_call("retrieving an invoice"):
        return await client.retrieve_invoice(invoice_id, expand=["payments"])


def payment_intent_of(invoice: dict[str, Any]) -> str | None:
    """The PaymentIntent that paid the invoice."""
    for payment in ((invoice.get("payments") or {}).get("data") or []):
        if payment.get("status") == "paid":
            return object_id((payment.get("payment") or {}).get("payment_intent"))
    return object_id(invoice.get("payment_intent"))


async def all_lines(client: StripeGateway, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    lines = invoice.get("lines") or {}
    if not lines.get("has_more"):
        return list(lines.get("data") or [])
    async with stripe_call("listing invoice lines"):
        return await client.list_invoice_lines(invoice["id"])


def line_price_id(line: dict[str, Any]) -> str | None:
    details = ((line.get("pricing") or {}).get("price_details") or {})
    return object_id(details.get("price")) or object_id(line.get("price"))


def is_proration(line: dict[str, Any]) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration") or line.get("proration"))


_price = mirror.retrieve_price


@dataclass(frozen=True)
class _PaidPlanLines:
    """What an invoice's paid plan lines grant: their credits, and the plan, interval and period of the last one."""
    credits: int
    plan_id: str | None
    interval: str | None
    period: tuple[int | None, int | None]


async def _paid_plan_lines(client: StripeGateway, book: PlanBook, invoice: dict[str, Any]) -> _PaidPlanLines:
    """The plan price × quantity of every line that is not a proration, not free (a trial) and of a Tally plan."""
    credits, plan_id, interval = 0, None, None
    period: tuple[int | None, int | None] = (None, None)
    for line in await all_lines(client, invoice):
        price_id = line_price_id(line)
        if price_id is None or is_proration(line) or int(line.get("amount") or 0) <= 0:
            continue
        found = book.for_price(await mirror.retrieve_price(client, price_id))
        if found is None:
            continue
        plan, price = found
        credits += price.credits * int(line.get("quantity") or 1)
        plan_id, interval = plan.id, price.interval
        period = ((line.get("period") or {}).get("start"), (line.get("period") or {}).get("end"))
    return _PaidPlanLines(credits, plan_id, interval, period)


async def record_paid(session: AsyncSession, client: StripeGateway, *, book: PlanBook, row: Subscription,
                      invoice: dict[str, Any]) -> SubscriptionInvoice:
    existing = await session.get(SubscriptionInvoice, invoice["id"])
    if existing is not None:
        return existing
    paid = await _paid_plan_lines(client, book, invoice)
    credits, plan_id, interval, period = paid.credits, paid.plan_id, paid.interval, paid.period
    transaction_id = None
    if credits > 0:
        movement = await grant_invoice(
            session, book=book, user_id=row.user_id, subscription_id=row.id, invoice_id=invoice["id"],
            plan_id=plan_id, credits_=credits, period=period, description=f"{plan_id} plan, {interval}ly credits",
            paid=paid_for(invoice), details={"invoice_id": invoice["id"], "subscription_id": row.id,
                     "billing_reason": invoice.get("billing_reason"), "period_start": period[0],
                     "period_end": period[1]})
        transaction_id = movement.transaction_id
    await session.execute(insert(SubscriptionInvoice).values(
        id=invoice["id"], user_id=row.user_id, subscription_id=row.id, number=invoice.get("number"),
        billing_reason=invoice.get("billing_reason"), amount_paid=int(invoice.get("amount_paid") or 0),
        currency=str(invoice.get("currency") or "usd"), plan_id=plan_id, interval=interval, credits=credits,
        period_start=period[0], period_end=period[1], hosted_invoice_url=invoice.get("hosted_invoice_url"),
        ledger_transaction_id=transaction_id, stripe_payment_intent_id=payment_intent_of(invoice),
        paid_at=(invoice.get("status_transitions") or {}).get("paid_at"))
        .on_conflict_do_nothing(index_elements=["id"]))
    recorded = await session.get(SubscriptionInvoice, invoice["id"])
    assert recorded is not None
    return recorded
