"""Subscription invoices and dunning, driven by webhooks (always re-fetching the invoice) and by the worker.

Credits: each paid subscription invoice grants, once (ledger reference ``invoice:{in_…}:grant``), the credits
of every non-proration line's plan price × quantity: the first period, each renewal, the new cycle of a
month → year switch. Lines of amount 0 (a trial period) grant nothing: credits are paid value, a trial gives
access only. Proration lines grant nothing here; an upgrade's prorated difference is granted per change
(``service.grant_change_if_paid``): the change Tally's API recorded, or, for an upgrade made in the billing
portal, one derived from the paid invoice's proration lines (``_derived_change``). Each paid invoice is recorded in ``subscription_invoices`` with Stripe's
number and hosted URL (Stripe is the invoicing party for subscriptions; Tally's gap-free ``INV-…`` numbers
are for its own pack orders).

Dunning: the first failed payment of an invoice schedules one notice per ``TALLY_DUNNING_DAYS`` step (days after
the invoice was finalized, in Stripe's time — a test clock's time on a clock). The worker sends due notices;
each re-checks the invoice with Stripe first and is skipped once it is paid, voided or uncollectible, and
``invoice.paid`` skips the rest at once. Access itself follows the subscription status (``models``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import logging
import uuid
from typing import Any

import jwt
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..config import Settings
from ..customers.models import User
from ..db import Database
from ..email.service import Email, enqueue
from ..receipts.service import renewal_paid
from ..stripe_gateway import InvalidRequestError, StripeGateway, object_id, stripe_call
from . import mirror
from .credits import grant_invoice
from .models import DunningNotice, Subscription, SubscriptionChange, SubscriptionInvoice
from .plans import PlanBook, upgrade_credits

log = logging.getLogger("tally.subscriptions")
DAY = 86400
CHANGE_GRACE = dt.timedelta(minutes=5)  # how long an upgrade's route may take to record its invoice


class ChangeNotRecordedYet(RuntimeError):
    """An upgrade invoice arrived while the route that asked for it has not committed its record: retry."""


# -- invoices --------------------------------------------------------------------------------------
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


async def _all_lines(client: StripeGateway, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    lines = invoice.get("lines") or {}
    if not lines.get("has_more"):
        return list(lines.get("data") or [])
    async with stripe_call("listing invoice lines"):
        return await client.list_invoice_lines(invoice["id"])


def _line_price_id(line: dict[str, Any]) -> str | None:
    details = ((line.get("pricing") or {}).get("price_details") or {})
    return object_id(details.get("price")) or object_id(line.get("price"))


def _is_proration(line: dict[str, Any]) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration") or line.get("proration"))


_price = mirror.retrieve_price


async def on_invoice(session: AsyncSession, client: StripeGateway, *, settings: Settings, book: PlanBook,
                     invoice_id: str) -> None:
    """Any ``invoice.*`` event: act on the invoice's current state (paid → grant; failed → dunning). An invoice
    Stripe no longer has (a deleted draft) has nothing to act on."""
    try:
        invoice = await retrieve_invoice(client, invoice_id)
    except InvalidRequestError as exc:
        if exc.code != "resource_missing":
            raise
        log.info("invoice %s no longer exists (a deleted draft): nothing to do", invoice_id)
        return
    subscription_id = subscription_of(invoice)
    if subscription_id is None:
        return  # a one-off invoice: not a subscription's
    row = await mirror.sync(session, client, book, subscription_id)
    if row is None:
        return
    if invoice.get("status") == "paid":
        recorded = await record_paid(session, client, book=book, row=row, invoice=invoice)
        plan = book.get(recorded.plan_id or "")
        await renewal_paid(session, settings, record=recorded, plan_name=plan.name if plan else None)
        await _grant_upgrade(session, client, book=book, row=row, invoice=invoice)
        await stop_dunning(session, invoice_id)
    elif invoice.get("status") == "open" and int(invoice.get("attempt_count") or 0) > 0 \
            and invoice.get("billing_reason") != "subscription_create":
        await schedule_dunning(session, client, settings=settings, user_id=row.user_id, invoice=invoice)
    elif invoice.get("status") in ("void", "uncollectible"):
        await stop_dunning(session, invoice_id)


async def record_paid(session: AsyncSession, client: StripeGateway, *, book: PlanBook, row: Subscription,
                      invoice: dict[str, Any]) -> SubscriptionInvoice:
    existing = await session.get(SubscriptionInvoice, invoice["id"])
    if existing is not None:
        return existing
    credits, plan_id, interval = 0, None, None
    period: tuple[int | None, int | None] = (None, None)
    for line in await _all_lines(client, invoice):
        price_id = _line_price_id(line)
        if price_id is None or _is_proration(line) or int(line.get("amount") or 0) <= 0:
            continue
        found = book.for_price(await _price(client, price_id))
        if found is None:
            continue
        plan, price = found
        credits += price.credits * int(line.get("quantity") or 1)
        plan_id, interval = plan.id, price.interval
        period = ((line.get("period") or {}).get("start"), (line.get("period") or {}).get("end"))
    transaction_id = None
    if credits > 0:
        movement = await grant_invoice(
            session, book=book, user_id=row.user_id, subscription_id=row.id, invoice_id=invoice["id"],
            plan_id=plan_id, credits_=credits, period=period, description=f"{plan_id} plan, {interval}ly credits",
            details={"invoice_id": invoice["id"], "subscription_id": row.id,
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


async def _grant_upgrade(session: AsyncSession, client: StripeGateway, *, book: PlanBook, row: Subscription,
                         invoice: dict[str, Any]) -> None:
    """The prorated credits of an upgrade, once its invoice is paid: the change Tally's API recorded, or (for
    an upgrade made elsewhere, e.g. in the billing portal) one derived from the invoice's proration lines."""
    if invoice.get("billing_reason") != "subscription_update":
        return
    from .service import grant_change_if_paid

    change = await session.scalar(select(SubscriptionChange).where(
        SubscriptionChange.stripe_invoice_id == invoice["id"]).with_for_update())
    if change is None:
        waiting = await session.scalar(select(func.count()).select_from(SubscriptionChange).where(
            SubscriptionChange.subscription_id == row.id, SubscriptionChange.status == "requested",
            SubscriptionChange.kind == "upgrade", SubscriptionChange.credits > 0,
            SubscriptionChange.created_at > func.now() - CHANGE_GRACE))
        if waiting:
            raise ChangeNotRecordedYet(f"invoice {invoice['id']}: an upgrade of {row.id} is still being recorded")
        change = await _derived_change(session, client, book=book, row=row, invoice=invoice)
    if change is not None:
        await grant_change_if_paid(session, client, change, invoice, book=book)


async def _derived_change(session: AsyncSession, client: StripeGateway, *, book: PlanBook, row: Subscription,
                          invoice: dict[str, Any]) -> SubscriptionChange | None:
    """Record an upgrade Tally did not ask for from its invoice: the "Unused time" line names the old price,
    the "Remaining time" line the new one, and their period ``[t, end)`` the change's instant. Its id comes
    from the invoice's, so replays find the same record (and the same ledger reference)."""
    old = new = None
    t = end = 0
    for line in await _all_lines(client, invoice):
        price_id = _line_price_id(line)
        if price_id is None or not _is_proration(line):
            continue
        found = book.for_price(await _price(client, price_id))
        period = line.get("period") or {}
        if found is None:
            continue
        if int(line.get("amount") or 0) < 0:
            old = found
        elif int(line.get("amount") or 0) > 0:
            new = found
            t, end = int(period.get("start") or 0), int(period.get("end") or 0)
    if old is None or new is None or old[1].interval != new[1].interval or new[0].rank <= old[0].rank:
        return None  # not an upgrade within an interval (a new cycle's invoice grants its credits itself)
    start = _period_start(row, new[1].interval, end)
    credits = upgrade_credits(old[1].credits, new[1].credits, end - t, end - start)
    change_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"stripe-invoice:{invoice['id']}"))
    await session.execute(insert(SubscriptionChange).values(
        id=change_id, user_id=row.user_id, subscription_id=row.id, kind="upgrade", from_plan_id=old[0].id,
        from_interval=old[1].interval, to_plan_id=new[0].id, to_interval=new[1].interval, proration_date=t,
        period_start=start, period_end=end, credits=credits, stripe_invoice_id=invoice["id"], status="applied")
        .on_conflict_do_nothing())
    return await session.scalar(select(SubscriptionChange).where(
        SubscriptionChange.stripe_invoice_id == invoice["id"]).with_for_update())


def _period_start(row: Subscription, interval: str, end: int) -> int:
    """The start of the billing period that ends at ``end``: the mirror's, when that is still the current one;
    otherwise one interval back on the calendar (how Stripe counts periods from the cycle's anchor day)."""
    if row.current_period_end == end and row.current_period_start is not None:
        return int(row.current_period_start)
    d = dt.datetime.fromtimestamp(end, dt.UTC)
    months = d.year * 12 + d.month - 1 - (12 if interval == "year" else 1)
    year, month = divmod(months, 12)
    day = min(d.day, calendar.monthrange(year, month + 1)[1])
    return int(d.replace(year=year, month=month + 1, day=day).timestamp())


# -- dunning ---------------------------------------------------------------------------------------
async def schedule_dunning(session: AsyncSession, client: StripeGateway, *, settings: Settings, user_id: str,
                           invoice: dict[str, Any]) -> None:
    """One notice per configured day after the invoice was finalized (idempotent: unique per step)."""
    anchor = int((invoice.get("status_transitions") or {}).get("finalized_at") or invoice.get("created") or 0)
    clock = object_id(invoice.get("test_clock"))
    if clock:
        await mirror.stripe_now(session, client, invoice)  # remember the clock's time for the scan
    await session.execute(insert(DunningNotice).values([
        {"invoice_id": invoice["id"], "user_id": user_id, "step": day, "due_at": anchor + day * DAY,
         "test_clock": clock} for day in settings.dunning_days])
        .on_conflict_do_nothing(constraint="uq_dunning_notices_invoice_id_step"))


async def stop_dunning(session: AsyncSession, invoice_id: str) -> None:
    await session.execute(update(DunningNotice).where(DunningNotice.invoice_id == invoice_id,
                                                      DunningNotice.status == "scheduled").values(status="skipped"))


# Due notices: wall-clock ones by the partial index (test_clock IS NULL, due_at), clock ones per known clock.
_DUE = text("""
    SELECT id FROM dunning_notices
    WHERE status = 'scheduled' AND test_clock IS NULL AND due_at <= :now
    UNION ALL
    SELECT n.id FROM test_clock_times c
    JOIN dunning_notices n ON n.test_clock = c.id AND n.status = 'scheduled' AND n.due_at <= c.frozen_time
    LIMIT :limit""")


async def send_due_notices(db: Database, client: StripeGateway, settings: Settings, *, now: int,
                           limit: int = 100) -> int:
    """Send the notices that are due; returns how many went out. Rows are taken ``SKIP LOCKED`` so workers
    share the work; each is re-checked with Stripe so that a paid invoice stops its reminders."""
    sent = 0
    async with db.transaction() as session:
        ids = [r[0] for r in (await session.execute(_DUE, {"now": now, "limit": limit})).all()]
        if not ids:
            return 0
        notices = (await session.scalars(select(DunningNotice).where(
            DunningNotice.id.in_(ids), DunningNotice.status == "scheduled")
            .order_by(DunningNotice.due_at).with_for_update(skip_locked=True))).all()
        for notice in notices:
            invoice = await retrieve_invoice(client, notice.invoice_id)
            if invoice.get("status") != "open":
                notice.status = "skipped"
                continue
            user = await session.get(User, notice.user_id)
            to = (user.email if user else None) or invoice.get("customer_email")
            sub = await session.get(Subscription, subscription_of(invoice) or "")
            ended = sub is not None and not sub.has_access  # Stripe gave up: say so rather than "still active"
            if to:
                await enqueue(session, settings, dedupe_key=f"dunning:{notice.invoice_id}:{notice.step}",
                              kind="dunning", user_id=notice.user_id,
                              email=dunning_email(settings, invoice, notice.step, to, ended=ended))
                sent += 1
            notice.status = "sent"
            notice.sent_at = func.now()
    return sent


def dunning_email(settings: Settings, invoice: dict[str, Any], step: int, to: str, *, ended: bool = False) -> Email:
    amount = money.format_amount(int(invoice.get("amount_due") or 0), str(invoice.get("currency") or "usd"))
    link = portal_link(settings, str(invoice.get("customer")))
    if ended:
        return Email(to=to, subject="Your subscription has been paused: the payment failed",
                     body=(f"We could not charge your card for {amount} after several tries, so your subscription's "
                           f"access is paused.\n\nUpdate your payment method and see your invoices here:\n{link}\n\n"
                           f"— {settings.seller_name}"))
    subject = ("Your payment failed — please update your card" if step == 0
               else f"Reminder: your payment of {amount} is still due")
    body = (f"We could not charge your card for {amount} (invoice {invoice.get('number') or invoice['id']}).\n\n"
            f"Update your payment method here and we will retry automatically:\n{link}\n\n"
            f"Your subscription stays active while we retry; it will be paused if the payment keeps failing.\n\n"
            f"— {settings.seller_name}")
    return Email(to=to, subject=subject, body=body)


async def trial_reminder(session: AsyncSession, client: StripeGateway, *, settings: Settings, book: PlanBook,
                         subscription_id: str) -> None:
    """``customer.subscription.trial_will_end`` (3 days before): one email per subscription and trial end."""
    row = await mirror.sync(session, client, book, subscription_id)
    if row is None or row.status != "trialing" or not row.trial_end:
        return
    user = await session.get(User, row.user_id)
    if user is None or not user.email:
        return
    plan = book.get(row.plan_id or "")
    ends = dt.datetime.fromtimestamp(row.trial_end, dt.UTC).strftime("%d %B %Y")
    price = plan.price(row.interval or "") if plan else None
    charge = f" and charge {money.format_amount(price.amount, plan.currency)}" if plan and price else ""
    await enqueue(session, settings, dedupe_key=f"trial_will_end:{row.id}:{row.trial_end}", kind="trial_ending",
                  user_id=row.user_id, email=Email(
                      to=user.email, subject=f"Your trial ends on {ends}",
                      body=(f"Your {plan.name if plan else ''} trial ends on {ends}. We will then start your "
                            f"subscription{charge}.\n\nManage or cancel it here:\n"
                            f"{portal_link(settings, row.stripe_customer_id)}\n\n— {settings.seller_name}")))


# -- portal links in emails ------------------------------------------------------------------------
PORTAL_LINK_DAYS = 14


def _link_key(settings: Settings) -> str:
    # A key of its own, derived from the JWT secret: a portal link can never pass as a login token.
    return hashlib.sha256(("tally-portal-link:" + settings.dev_jwt_secret).encode()).hexdigest()


def portal_link(settings: Settings, customer_id: str) -> str:
    """A link that opens a fresh billing portal session when clicked (portal sessions themselves expire in
    minutes, too soon for an email)."""
    token = jwt.encode({"cus": customer_id, "exp": dt.datetime.now(dt.UTC) + dt.timedelta(days=PORTAL_LINK_DAYS)},
                       _link_key(settings), algorithm="HS256")
    return f"{settings.public_url.rstrip('/')}/billing/portal/{token}"


def customer_from_link(settings: Settings, token: str) -> str | None:
    try:
        claims = jwt.decode(token, _link_key(settings), algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    customer = claims.get("cus")
    return customer if isinstance(customer, str) else None
