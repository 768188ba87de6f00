"""Every rule of how credits enter and leave a wallet. Other domains call these; nothing else writes the ledger.

Grants. Every credit enters as a grant with a source, a category (``paid`` or ``promotional``), an amount, what
remains of it, an optional expiry and a priority. A debit (spend, hold, capture, reversal, adjustment down)
draws from the wallet's grants in this order:

1. lower ``priority`` first: promotional credits (10), then a subscription's allowance (20), then credits
   bought or granted for good (30), so that what was paid for outlasts what was given;
2. then the sooner ``expires_at`` (never-expiring last);
3. then the older grant.

Each wallet entry of a debit names the grant it drew from. An expired grant is never drawn from; the worker
(``tally.ledger.expiry``) books what is left of it as an ``expiry`` transaction, once.

Reversals (a Stripe refund or dispute) draw first from the grants of the payment they reverse, then in the
order above, and may take the wallet below zero: what no grant covers becomes the wallet's debt, which the next
grant pays first. That is the only way a balance goes negative: taking back only what remains would let a user
buy, spend, refund and keep what they spent. A won dispute gives the credits back as a ``reinstatement`` grant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import InsufficientCredits
from . import references
from .models import ADJUSTMENTS, BONUSES, DISPUTES, PROMOTIONS, PURCHASES, REFUNDS, CreditGrant, LedgerTransaction
from .posting import Credit, Debit, Movement, Paid, post
from .references import Kind

PROMOTIONAL_PRIORITY = 10
SUBSCRIPTION_PRIORITY = 20
PAID_PRIORITY = 30


# -- money in ---------------------------------------------------------------------------------------------
async def grant_pack(session: AsyncSession, *, user_id: str, order_id: str, coins: int, bonus: int,
                     description: str, paid: Paid, expires_at: datetime | None = None,
                     details: dict[str, Any] | None = None) -> Movement:
    """A paid pack: its coins as a paid grant (from ``system:purchases``) worth ``paid``, and its bonus as a
    promotional one (from ``system:bonuses``), both expiring at ``expires_at`` when the pack says so. Once per
    order."""
    steps: list[Credit | Debit] = [Credit(coins, "coins", PURCHASES, "purchase", "paid", PAID_PRIORITY, expires_at,
                                          paid=paid)]
    if bonus:
        steps.append(Credit(bonus, "bonus", BONUSES, "purchase", "promotional", PROMOTIONAL_PRIORITY, expires_at))
    return await post(session, reference=references.order_purchase(order_id), kind=Kind.PURCHASE, user_id=user_id,
                      order_id=order_id, description=description, details=details, steps=steps)


async def grant_subscription(session: AsyncSession, *, user_id: str, invoice_id: str, credits: int, description: str,
                             subscription_id: str, paid: Paid | None, expires_at: datetime | None = None,
                             rollover_cap: int | None = None, details: dict[str, Any] | None = None) -> Movement:
    """The credits of a paid subscription invoice (worth ``paid``), once per invoice. 0 credits (a trial
    invoice) still records the invoice as handled."""
    steps = [Credit(credits, "subscription", PURCHASES, "subscription", "paid", SUBSCRIPTION_PRIORITY, expires_at,
                    subscription_id, rollover_cap, paid)] if credits > 0 else []
    return await post(session, reference=references.invoice_grant(invoice_id), kind=Kind.SUBSCRIPTION,
                      user_id=user_id, description=description, details=details, steps=steps)


async def grant_proration(session: AsyncSession, *, user_id: str, change_id: str, credits: int, description: str,
                          subscription_id: str, paid: Paid | None, expires_at: datetime | None = None,
                          rollover_cap: int | None = None, details: dict[str, Any] | None = None) -> Movement:
    """An upgrade's prorated credits (worth ``paid``, the proration invoice), once per recorded change."""
    steps = [Credit(credits, "subscription", PURCHASES, "proration", "paid", SUBSCRIPTION_PRIORITY, expires_at,
                    subscription_id, rollover_cap, paid)] if credits > 0 else []
    return await post(session, reference=references.subscription_change_grant(change_id), kind=Kind.SUBSCRIPTION,
                      user_id=user_id, description=description, details=details, steps=steps)


async def grant_promotion(session: AsyncSession, *, user_id: str, amount: int, reason: str, key: str,
                          expires_at: datetime | None = None) -> Movement:
    """Promotional credits from the operator, once per ``key``."""
    return await post(session, reference=references.promotion(user_id, key), kind=Kind.PROMOTION, user_id=user_id,
                      description=reason, details={"reason": reason, "key": key},
                      steps=[Credit(amount, "promotion", PROMOTIONS, "promotion", "promotional",
                                    PROMOTIONAL_PRIORITY, expires_at)])


async def adjust(session: AsyncSession, *, user_id: str, delta: int, reason: str, key: str,
                 expires_at: datetime | None = None) -> Movement:
    """The operator's correction, once per ``key``: up is a paid grant, down draws in the normal order and,
    like a spend, never takes the wallet below what it can spend."""
    if delta == 0:
        raise ValueError("an adjustment moves at least one credit")
    reference = references.adjustment(user_id, key)
    details = {"reason": reason, "key": key}
    if delta > 0:
        step: Credit | Debit = Credit(delta, "adjustment", ADJUSTMENTS, "adjustment", "paid", PAID_PRIORITY,
                                      expires_at)
    else:
        already = await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.reference == reference))
        if already is None:
            await _require_spendable(session, user_id, -delta)
        step = Debit(-delta, "adjustment", ADJUSTMENTS)
    return await post(session, reference=reference, kind=Kind.ADJUSTMENT, user_id=user_id, description=reason,
                      details=details, steps=[step])


async def _require_spendable(session: AsyncSession, user_id: str, amount: int) -> None:
    from .posting import ensure_wallet, utc_now
    from .service import lock_wallet, spendable

    await ensure_wallet(session, user_id)
    await lock_wallet(session, user_id)
    available = await spendable(session, user_id, utc_now())
    if available < amount:
        raise InsufficientCredits(f"The spendable balance is lower than {amount}.", param="amount",
                                  balance=available)


# -- money back -------------------------------------------------------------------------------------------
async def grants_of(session: AsyncSession, reference: str) -> list[CreditGrant]:
    """The grants the transaction ``reference`` created, in order (to reverse them first)."""
    rows = await session.scalars(select(CreditGrant).join(LedgerTransaction,
                                                          LedgerTransaction.id == CreditGrant.transaction_id)
                                 .where(LedgerTransaction.reference == reference).order_by(CreditGrant.id))
    return list(rows.all())


async def reverse_refund(session: AsyncSession, *, user_id: str, refund_id: str, credits: int,
                         reversed_reference: str, order_id: str | None = None,
                         details: dict[str, Any] | None = None) -> Movement:
    """Take back ``credits`` for one Stripe refund of the payment that posted ``reversed_reference``."""
    first = [g.id for g in await grants_of(session, reversed_reference)]
    return await post(session, reference=references.refund(refund_id), kind=Kind.REFUND, user_id=user_id,
                      order_id=order_id, description="Refund", details=details,
                      steps=[Debit(credits, "clawback", REFUNDS, first, allow_debt=True)])


async def withdraw_for_dispute(session: AsyncSession, *, user_id: str, dispute_id: str, credits: int,
                               reversed_reference: str, order_id: str | None = None,
                               details: dict[str, Any] | None = None) -> Movement:
    """Take back ``credits`` for a chargeback of the payment that posted ``reversed_reference``, once."""
    first = [g.id for g in await grants_of(session, reversed_reference)]
    return await post(session, reference=references.dispute_withdrawal(dispute_id), kind=Kind.DISPUTE,
                      user_id=user_id, order_id=order_id, description="Chargeback (dispute opened)", details=details,
                      steps=[Debit(credits, "dispute", DISPUTES, first, allow_debt=True)])


async def reinstate_after_dispute(session: AsyncSession, *, user_id: str, dispute_id: str, credits: int,
                                  reversed_reference: str, order_id: str | None = None,
                                  details: dict[str, Any] | None = None) -> Movement:
    """Give back what a won dispute took, once, as a paid grant with the reversed grant's expiry and priority
    (credits that would have lapsed meanwhile lapse at once)."""
    original = await grants_of(session, reversed_reference)
    paid = next((g for g in original if g.category == "paid"), original[0] if original else None)
    priority = paid.priority if paid else PAID_PRIORITY
    expires_at = paid.expires_at if paid else None
    return await post(session, reference=references.dispute_reinstatement(dispute_id), kind=Kind.REINSTATEMENT,
                      user_id=user_id, order_id=order_id, description="Dispute won: credits given back",
                      details=details,
                      steps=[Credit(credits, "reinstatement", DISPUTES, "reinstatement", "paid", priority, expires_at)])


async def refunds_recorded(session: AsyncSession, refund_ids: list[str]) -> set[str]:
    """Which of these Stripe refunds have already taken their credits back."""
    if not refund_ids:
        return set()
    by_reference = {references.refund(r): r for r in refund_ids}
    rows = await session.scalars(select(LedgerTransaction.reference)
                                 .where(LedgerTransaction.reference.in_(list(by_reference))))
    return {by_reference[r] for r in rows.all()}
