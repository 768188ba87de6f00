"""What the subscription routes do: start a subscription Checkout, read the subscription, change, cancel and
resume it, and open the billing portal. Functions take the caller's session and never commit, except
``change_plan``, which is two units of work by design (see there).

Changes follow one rule set (the billing portal's configuration applies the same one, see ``portal``):
- same interval, higher ``rank`` → upgrade now: ``proration_behavior=always_invoice`` with our own
  ``proration_date``, so Stripe's prorated invoice and our prorated credit grant use the same instant;
- month → year → upgrade now (Stripe starts a new yearly cycle; its invoice grants the year's credits);
- same interval, lower ``rank``, and year → month → downgrade at period end, in a subscription schedule
  (``schedules``): the paid-for plan stays until the period ends, then Stripe bills the new one (a new
  interval starts its cycle then). ``GET /v1/subscription`` shows it as ``pending_change``. Asking for the
  current plan again calls it off (the schedule is released); an upgrade replaces it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.service import Principal
from ..catalog.service import Catalog
from ..checkout_locale import checkout_locale
from ..config import Settings
from ..customers.service import ensure_stripe_customer, ensure_user
from ..db import Database
from ..errors import Conflict, NotFound, TallyError
from ..stripe_gateway import InvalidRequestError, StripeGateway, idempotency_key, is_missing, object_id, stripe_call
from . import mirror, portal, schedules
from .credits import grant_upgrade, paid_for
from .models import LIVE_STATUSES, Subscription, SubscriptionChange, SubscriptionCheckout
from .plans import PlanBook, PlanPrices, SubscriptionPlan, plan_book, upgrade_credits

# A user with one of these may not start a second subscription through Checkout: change the first instead.
BLOCKING_STATUSES = LIVE_STATUSES - {"incomplete"}


class PortalUnavailable(TallyError):
    status = 503
    type = "portal_unavailable"


# -- Checkout --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckoutStarted:
    checkout_id: str
    session_id: str
    checkout_url: str


async def start_checkout(session: AsyncSession, client: StripeGateway, *, settings: Settings, book: PlanBook,
                         prices: PlanPrices, catalog: Catalog, principal: Principal, plan_id: str, interval: str,
                         success_url: str | None, cancel_url: str | None,
                         locale: str | None = None) -> CheckoutStarted:
    """Checkout in subscription mode, offering the catalog's payment methods for the plan's currency that can
    pay again without the buyer (Alipay, GrabPay, FPX and PayNow are one-time only: ``methods_for``)."""
    plan = book.require(plan_id, interval, param="plan_id")
    user = await ensure_user(session, principal)
    existing = await mirror.current(session, user.id)
    if existing is not None and existing.status in BLOCKING_STATUSES:
        raise Conflict("You already have a subscription; change its plan instead.", param="plan_id")
    customer_id = await ensure_stripe_customer(session, client, user)
    price_id = await prices.price_id(client, plan, interval)
    record = SubscriptionCheckout(id=str(uuid.uuid4()), user_id=user.id, plan_id=plan.id, interval=interval)
    language = checkout_locale(locale)
    if language is not None and language != "auto":
        user.locale = language  # renewal receipts speak it
    session.add(record)
    await session.flush()
    base = settings.public_url.rstrip("/")
    metadata = {"user_id": user.id, "plan_id": plan.id, "interval": interval, "subscription_checkout_id": record.id}
    async with stripe_call("creating the subscription checkout"):
        checkout = await client.create_checkout_session({
            "mode": "subscription", "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "payment_method_types": catalog.payment_method_types(plan.currency, recurring=True),
            "metadata": metadata, "subscription_data": {"metadata": metadata},
            "success_url": success_url or f"{base}/account?subscription=started",
            "cancel_url": cancel_url or f"{base}/pricing",
            **({"allow_promotion_codes": True} if settings.allow_promotion_codes else {}),
            **({"locale": language} if language else {}),
        }, idempotency_key=idempotency_key("subscription_checkout", record.id, "create"))
    record.stripe_checkout_session_id = checkout["id"]
    await session.flush()
    return CheckoutStarted(record.id, checkout["id"], str(checkout["url"]))


# -- reading ---------------------------------------------------------------------------------------
def view(row: Subscription | None, book: PlanBook) -> dict[str, Any]:
    """What ``GET /v1/subscription`` answers. With no subscription at all: ``status: "none"``, the other
    fields null and no entitlements (one shape for every answer, so clients need no 404 branch)."""
    if row is None:
        return {"id": None, "plan": None, "interval": None, "status": "none", "current_period_end": None,
                "cancel_at_period_end": False, "trial_end": None, "entitlements": [], "pending_change": None}
    plan = book.get(row.plan_id or "")
    pending = None
    if row.pending_plan_id:
        pending = {"plan": row.pending_plan_id, "interval": row.pending_interval,
                   "effective_at": row.pending_effective_at}
    return {"id": row.id, "plan": row.plan_id, "interval": row.interval, "status": row.status,
            "current_period_end": row.current_period_end, "cancel_at_period_end": row.cancel_at_period_end,
            "trial_end": row.trial_end,
            "entitlements": list(plan.features) if plan is not None and row.has_access else [],
            "pending_change": pending}


async def _require(session: AsyncSession, user_id: str) -> Subscription:
    row = await mirror.current(session, user_id, lock=True)
    if row is None or row.status not in LIVE_STATUSES:
        raise NotFound("You have no subscription.")
    return row


# -- change ----------------------------------------------------------------------------------------
def change_kind(current: SubscriptionPlan | None, from_interval: str, target: SubscriptionPlan, interval: str) -> str:
    """``upgrade`` (now) or ``downgrade`` (at period end), by the rules in the module docstring."""
    if from_interval == interval:
        return "upgrade" if target.rank > (current.rank if current else 0) else "downgrade"
    return "upgrade" if (from_interval, interval) == ("month", "year") else "downgrade"


async def change_plan(db: Database, client: StripeGateway, *, book: PlanBook, prices: PlanPrices,
                      principal: Principal, plan_id: str, interval: str) -> Subscription:
    """Upgrade now or downgrade at period end (rules in the module docstring).

    Two transactions on purpose: the change record (whose id keys the Stripe calls and the credit grant) is
    committed before Stripe is asked, so a crash after Stripe's answer cannot lose what the upgrade owes; the
    second transaction, under the mirror row's lock, writes Stripe's answer and grants the prorated credits
    when the proration invoice is already paid (else ``invoice.paid`` will)."""
    target = book.require(plan_id, interval, param="plan_id")
    async with db.transaction() as session:
        row = await _require(session, principal.user_id)
        _check_changeable(row)
        sub = await mirror.retrieve_subscription(client, row.id)
        item = mirror.first_item(sub or {})
        if sub is None or item is None or row.plan_id is None or row.interval is None:
            raise Conflict("This subscription is not on a Tally plan.")
        current = book.get(row.plan_id)
        kind = _requested_kind(row, row.interval, current, target, interval)
        now = await mirror.stripe_now(session, client, sub)
        start, end = mirror.period_of(sub)
        start, end = int(start or now), int(end or now)
        credits = _upgrade_credits(kind, sub, current, target, from_interval=row.interval, interval=interval,
                                   now=now, period=(start, end))
        change = SubscriptionChange(
            id=str(uuid.uuid4()), user_id=row.user_id, subscription_id=row.id, kind=kind,
            from_plan_id=row.plan_id, from_interval=row.interval, to_plan_id=target.id, to_interval=interval,
            proration_date=now, period_start=start, period_end=end, credits=credits)
        session.add(change)
    updated = await _ask_stripe(client, sub, item, change, price_id=await prices.price_id(client, target, interval),
                                undo=(target.id, interval) == (row.plan_id, row.interval))
    async with db.transaction() as session:
        return await _record_answer(session, client, book=book, subscription_id=row.id, sub=sub, change=change,
                                    kind=kind, updated=updated)


def _check_changeable(row: Subscription) -> None:
    """Only a subscription that is paid for and continues may change plan."""
    if row.status not in ("active", "trialing"):
        raise Conflict(f"A {row.status} subscription cannot change plan; update the card first.")
    if row.cancel_at_period_end:
        raise Conflict("This subscription ends with the period; resume it before changing plan.")


def _requested_kind(row: Subscription, from_interval: str, current: SubscriptionPlan | None,
                    target: SubscriptionPlan, interval: str) -> str:
    """``change_kind``, except that asking for the current plan calls off the waiting change (a downgrade), and
    asking for the current plan with nothing waiting, or for the change already waiting, is refused."""
    waiting = (row.pending_plan_id, row.pending_interval) if row.pending_plan_id else None
    if (row.plan_id, from_interval) == (target.id, interval):
        if waiting is None:
            raise Conflict("You are already on this plan.", param="plan_id")
        return "downgrade"  # back to the current plan: the waiting change is called off, nothing charged
    if waiting == (target.id, interval):
        raise Conflict("This change is already scheduled for the end of the period.", param="plan_id")
    return change_kind(current, from_interval, target, interval)


def _upgrade_credits(kind: str, sub: dict[str, Any], current: SubscriptionPlan | None, target: SubscriptionPlan, *,
                     from_interval: str, interval: str, now: int, period: tuple[int, int]) -> int:
    """The prorated credits an upgrade within an interval owes for the rest of the period (none otherwise)."""
    start, end = period
    if kind == "upgrade" and interval == from_interval and sub.get("status") == "active" and current:
        return upgrade_credits(current.prices[from_interval].credits, target.prices[interval].credits,
                               end - now, end - start)
    return 0


async def _record_answer(session: AsyncSession, client: StripeGateway, *, book: PlanBook, subscription_id: str,
                         sub: dict[str, Any], change: SubscriptionChange, kind: str,
                         updated: dict[str, Any]) -> Subscription:
    """Stripe's answer, under the mirror row's lock: the mirror synced, the change applied, and an upgrade's
    prorated credits granted when its new invoice is already paid (else ``invoice.paid`` will)."""
    fresh = await mirror.sync(session, client, book, subscription_id)
    assert fresh is not None
    saved = await session.get(SubscriptionChange, change.id, with_for_update=True)
    assert saved is not None
    saved.status = "applied"
    invoice_id = object_id(updated.get("latest_invoice")) if kind == "upgrade" else None
    if invoice_id and invoice_id != object_id(sub.get("latest_invoice")):
        saved.stripe_invoice_id = invoice_id
        await grant_change_if_paid(session, client, saved, book=book)
    return fresh


async def _ask_stripe(client: StripeGateway, sub: dict[str, Any], item: dict[str, Any],
                      change: SubscriptionChange, *, price_id: str, undo: bool) -> dict[str, Any]:
    """The Stripe side of a change: an upgrade updates the price now (after calling off a waiting change); a
    downgrade goes into the subscription's schedule; asking for the current plan releases that schedule."""
    schedule_id = object_id(sub.get("schedule"))
    release_key = idempotency_key("subscription_change", change.id, "release")
    if change.kind == "upgrade" or undo:
        if schedule_id:
            await schedules.release(client, schedule_id, key=release_key)
        if undo:
            if schedule_id or object_id((item.get("price") or {})) == price_id:
                return sub
            params: dict[str, Any] = {"items": [{"id": item["id"], "price": price_id}], "proration_behavior": "none"}
        else:
            params = {"items": [{"id": item["id"], "price": price_id}], "proration_behavior": "always_invoice",
                      "proration_date": change.proration_date}
        async with stripe_call("changing the plan"):
            return await client.update_subscription(
                sub["id"], params, idempotency_key=idempotency_key("subscription_change", change.id, "update"))
    await schedules.change_at_period_end(client, sub, price_id=price_id, interval=change.to_interval,
                                         change_id=change.id)
    return sub


async def grant_change_if_paid(session: AsyncSession, client: StripeGateway, change: SubscriptionChange,
                               invoice: dict[str, Any] | None = None, *, book: PlanBook | None = None) -> None:
    """Grant the upgrade's prorated credits once its proration invoice is paid (reference per change)."""
    if change.credits <= 0 or not change.stripe_invoice_id:
        return
    if invoice is None:
        async with stripe_call("retrieving an invoice"):
            invoice = await client.retrieve_invoice(change.stripe_invoice_id)
    if invoice.get("status") != "paid":
        return
    await grant_upgrade(session, book=book, user_id=change.user_id, subscription_id=change.subscription_id,
                        change_id=change.id, plan_id=change.to_plan_id, credits_=change.credits,
                        period_end=change.period_end, paid=paid_for(invoice),
                        description=f"Upgrade to {change.to_plan_id} ({change.to_interval}ly), prorated",
                details={"subscription_id": change.subscription_id, "invoice_id": change.stripe_invoice_id,
                         "from_plan": change.from_plan_id, "proration_date": change.proration_date,
                         "period_start": change.period_start, "period_end": change.period_end})


# -- cancel / resume -------------------------------------------------------------------------------
async def cancel(session: AsyncSession, client: StripeGateway, *, book: PlanBook, principal: Principal,
                 immediately: bool) -> Subscription:
    """At period end by default (access until then); ``immediately`` ends it now (no refund of the period)."""
    row = await _require(session, principal.user_id)
    key = idempotency_key("subscription", row.id, f"cancel:{'now' if immediately else 'period_end'}:{time.time_ns()}")
    if not immediately:  # Stripe refuses cancel_at_period_end on a scheduled subscription; the change is moot
        sub = await mirror.retrieve_subscription(client, row.id)
        if sub is not None and object_id(sub.get("schedule")):
            await schedules.release(client, str(object_id(sub.get("schedule"))), key=key + ":release")
    async with stripe_call("canceling the subscription"):
        if immediately:
            answer = await client.cancel_subscription(row.id, idempotency_key=key)
        else:
            answer = await client.update_subscription(row.id, {"cancel_at_period_end": True}, idempotency_key=key)
    result = await mirror.sync(session, client, book, row.id, known=answer)
    assert result is not None
    return result


async def resume(session: AsyncSession, client: StripeGateway, *, book: PlanBook,
                 principal: Principal) -> Subscription:
    """Undo a cancellation at period end, or resume a paused subscription."""
    row = await _require(session, principal.user_id)
    key = idempotency_key("subscription", row.id, f"resume:{time.time_ns()}")
    async with stripe_call("resuming the subscription"):
        if row.status == "paused":
            answer = await client.resume_subscription(row.id, idempotency_key=key)
        elif row.cancel_at_period_end or row.cancel_at:
            params: dict[str, Any] = {"cancel_at_period_end": False}
            if row.cancel_at and not row.cancel_at_period_end:
                params = {"cancel_at": ""}
            answer = await client.update_subscription(row.id, params, idempotency_key=key)
        else:
            raise Conflict("This subscription is neither canceled at period end nor paused.")
    result = await mirror.sync(session, client, book, row.id, known=answer)
    assert result is not None
    return result


# -- portal ----------------------------------------------------------------------------------------
async def portal_url(session: AsyncSession, client: StripeGateway, *, settings: Settings,
                     principal: Principal) -> str:
    user = await ensure_user(session, principal)
    customer_id = await ensure_stripe_customer(session, client, user)
    return await portal_url_for_customer(client, settings, customer_id)


async def portal_url_for_customer(client: StripeGateway, settings: Settings, customer_id: str) -> str:
    """A fresh billing portal session on Tally's configuration (``portal``); sessions are short-lived: create
    one per visit, never store the URL."""
    async with stripe_call("opening the billing portal"):
        try:
            configuration = await portal.configuration_id(client, settings, plan_book(settings))
            # Each visit is a new session; the key only makes this request's own retries one request.
            session = await client.create_portal_session({
                "customer": customer_id, "configuration": configuration,
                "return_url": settings.public_url.rstrip("/") + "/account"},
                idempotency_key=idempotency_key("portal_session", uuid.uuid4(), "create"))
        except InvalidRequestError as exc:
            if is_missing(exc):  # a Stripe (or sandbox) without the billing portal
                raise PortalUnavailable("The billing portal is not available here.") from exc
            raise
    return str(session["url"])
