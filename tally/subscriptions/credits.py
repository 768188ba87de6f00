"""How a subscription's credits are granted: the plan's lifetime rules applied to the ledger's grants.

- a paid invoice grants its period's credits once (``tally.ledger.credits.grant_subscription``);
- an upgrade's prorated credits are granted once per change (``grant_proration``);
- with ``credits_expire = "period_end"`` both lapse when the period ends, and a renewal first closes the
  period it follows (up to the plan's ``rollover_cap`` carries over; ``tally.ledger.expiry``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..ledger import credits, expiry
from ..ledger.posting import Movement, Paid
from .plans import PlanBook, SubscriptionPlan


def lifetime(plan: SubscriptionPlan | None, period_end: int | None) -> tuple[datetime | None, int | None]:
    """(expires_at, rollover_cap) of credits granted for a period of ``plan`` ending at ``period_end``."""
    if plan is None or plan.credits_expire != "period_end" or not period_end:
        return None, None
    return datetime.fromtimestamp(period_end, UTC), plan.rollover_cap or None


def paid_for(invoice: dict[str, Any]) -> Paid | None:
    """What the customer paid for an invoice's credits: the amount paid, net of tax (None for a trial's
    nothing)."""
    paid = int(invoice.get("amount_paid") or 0)
    total, excluding_tax = invoice.get("total"), invoice.get("total_excluding_tax")
    tax = int(total) - int(excluding_tax) if total is not None and excluding_tax is not None else 0
    return Paid(max(paid - tax, 0), str(invoice.get("currency") or "usd")) if paid > 0 else None


async def grant_invoice(session: AsyncSession, *, book: PlanBook, user_id: str, subscription_id: str,
                        invoice_id: str, plan_id: str | None, credits_: int, description: str,
                        period: tuple[int | None, int | None], paid: Paid | None,
                        details: dict[str, Any]) -> Movement:
    """A paid invoice's credits, after the period before it has been closed."""
    plan = book.get(plan_id) if plan_id else None
    start, end = period
    if start:
        await expiry.close_subscription_period(session, user_id=user_id, subscription_id=subscription_id,
                                               period_end=start, next_period_end=end)
    expires_at, cap = lifetime(plan, end)
    return await credits.grant_subscription(session, user_id=user_id, invoice_id=invoice_id, credits=credits_,
                                            description=description, subscription_id=subscription_id,
                                            paid=paid, expires_at=expires_at, rollover_cap=cap, details=details)


async def grant_upgrade(session: AsyncSession, *, book: PlanBook | None, user_id: str, subscription_id: str,
                        change_id: str, plan_id: str, credits_: int, period_end: int, description: str,
                        paid: Paid | None, details: dict[str, Any]) -> Movement:
    plan = book.get(plan_id) if book else None
    expires_at, cap = lifetime(plan, period_end)
    return await credits.grant_proration(session, user_id=user_id, change_id=change_id, credits=credits_,
                                         description=description, subscription_id=subscription_id,
                                         paid=paid, expires_at=expires_at, rollover_cap=cap, details=details)
