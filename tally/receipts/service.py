"""Receipts and notices, queued in the email outbox inside the transaction that records what they tell, once
per event by the outbox's unique ``dedupe_key``: ``receipt:order:<id>`` (a paid pack order),
``refund:<re_…>`` (one Stripe refund), ``receipt:invoice:<in_…>`` (a paid renewal). A replayed or
duplicated webhook writes nothing more; the worker delivers them (or ``/outbox`` shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..customers.models import User
from ..email.service import Email, enqueue
from ..invoices.models import Invoice
from ..ledger import service as ledger
from ..ledger.models import LedgerEntry, LedgerTransaction
from ..orders.models import Order
from ..subscriptions.models import SubscriptionInvoice
from .locale import babel_locale, format_count, format_day, format_money, words

_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html"]), keep_trailing_newline=True)


@dataclass(frozen=True)
class Message:
    subject: str
    context: dict[str, Any]


def render(template: str, message: Message, to: str, *, attachment: tuple[str, str] | None = None) -> Email:
    """The plain-text and HTML parts of one message, from ``<template>.txt`` and ``<template>.html``."""
    context = {**message.context, "subject": message.subject}
    return Email(to=to, subject=message.subject, body=_templates.get_template(f"{template}.txt").render(context),
                 html=_templates.get_template(f"{template}.html").render(context),
                 attachment_name=attachment[0] if attachment else None,
                 attachment_ref=attachment[1] if attachment else None)


def _common(settings: Settings, locale: str | None) -> dict[str, Any]:
    return {"t": words(locale), "lang": babel_locale(locale).language, "seller": settings.seller_name,
            "account_url": f"{settings.public_url.rstrip('/')}/account"}


def _recipient(user: User | None, invoice: Invoice | None = None) -> str | None:
    return (invoice.customer_email if invoice is not None and invoice.customer_email else None) or \
        (user.email if user is not None else None)


async def order_paid(session: AsyncSession, settings: Settings, *, order: Order, invoice: Invoice) -> bool:
    """The receipt of a paid pack order, with its invoice's PDF attached; False when already queued (or the
    buyer has no email address)."""
    user = await session.get(User, order.user_id)
    to = _recipient(user, invoice)
    if to is None:
        return False
    locale = order.locale or (user.locale if user else None)
    t = words(locale)
    coins = format_count(order.coins, locale) + (f" + {format_count(order.bonus, locale)} {t['bonus']}"
                                                 if order.bonus else "")
    message = Message(t["receipt_subject"].format(number=invoice.number, seller=settings.seller_name), {
        **_common(settings, locale), "pack": order.pack_name, "coins": coins,
        "price": format_money(order.price_before_discount, order.currency, locale),
        "discount": format_money(order.amount_discount, order.currency, locale) if order.amount_discount else None,
        "code": order.promotion_code, "tax": format_money(order.amount_tax, order.currency, locale),
        "total": format_money(order.amount, order.currency, locale),
        "day": format_day(invoice.issued_at or datetime.now(UTC), locale), "number": invoice.number})
    email = render("receipt", message, to, attachment=(f"{invoice.number}.pdf", f"invoice:{invoice.number}"))
    return await enqueue(session, settings, dedupe_key=f"receipt:order:{order.id}", kind="receipt",
                         user_id=order.user_id, email=email)


async def refunds_recorded(session: AsyncSession, settings: Settings, *, order: Order,
                           refunds: list[dict[str, Any]]) -> int:
    """One notice per Stripe refund the ledger recorded for ``order``: the money, the coins taken back and the
    balance now. Returns how many were newly queued."""
    user = await session.get(User, order.user_id)
    invoice = await session.scalar(select(Invoice).where(Invoice.order_id == order.id))
    to = _recipient(user, invoice)
    if to is None:
        return 0
    queued = 0
    for refund in refunds:
        coins = await _coins_taken(session, f"refund:{refund['id']}")
        if not coins:
            continue  # not recorded (or too small for a whole coin): nothing taken back to tell about
        message = await _refund_message(session, settings, order, invoice, refund, user, coins)
        queued += await enqueue(session, settings, dedupe_key=f"refund:{refund['id']}", kind="refund",
                                user_id=order.user_id, email=render("refund", message, to))
    return queued


async def _refund_message(session: AsyncSession, settings: Settings, order: Order, invoice: Invoice | None,
                          refund: dict[str, Any], user: User | None, coins: int) -> Message:
    locale = order.locale or (user.locale if user else None)
    t = words(locale)
    amount = format_money(int(refund["amount"]), str(refund.get("currency") or order.currency), locale)
    created = refund.get("created")
    day = datetime.fromtimestamp(created, UTC) if created else datetime.now(UTC)
    return Message(t["refund_subject"].format(amount=amount, seller=settings.seller_name), {
        **_common(settings, locale),
        "intro": t["refund_intro"].format(amount=amount, pack=order.pack_name,
                                          number=invoice.number if invoice else order.id),
        "coins": format_count(coins, locale),
        "balance": format_count(await ledger.get_balance(session, order.user_id), locale),
        "day": format_day(day, locale)})


async def _coins_taken(session: AsyncSession, reference: str) -> int:
    """What the ledger transaction ``reference`` took from the buyer's wallet (its wallet entry carries
    ``balance_after``; the other side of the double entry does not)."""
    total = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                 .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
                                 .where(LedgerTransaction.reference == reference,
                                        LedgerEntry.balance_after.is_not(None)))
    return -int(total or 0)


async def renewal_paid(session: AsyncSession, settings: Settings, *, record: SubscriptionInvoice,
                       plan_name: str | None) -> bool:
    """The receipt of a paid renewal (``billing_reason`` ``subscription_cycle``), with Stripe's hosted invoice
    link (the PDF is there). Other subscription invoices get none: Stripe's own emails cover the first one."""
    if record.billing_reason != "subscription_cycle" or record.amount_paid <= 0:
        return False
    user = await session.get(User, record.user_id)
    if user is None or not user.email:
        return False
    locale = user.locale
    t = words(locale)
    plan = plan_name or record.plan_id or ""
    period = None
    if record.period_start and record.period_end:
        period = " – ".join(format_day(datetime.fromtimestamp(ts, UTC), locale)
                            for ts in (record.period_start, record.period_end))
    message = Message(t["renewal_subject"].format(plan=plan, seller=settings.seller_name), {
        **_common(settings, locale), "intro": t["renewal_intro"].format(plan=plan),
        "amount": format_money(record.amount_paid, record.currency, locale), "period": period,
        "credits": format_count(record.credits, locale) if record.credits else None,
        "number": record.number or record.id, "invoice_url": record.hosted_invoice_url})
    return await enqueue(session, settings, dedupe_key=f"receipt:invoice:{record.id}", kind="receipt",
                         user_id=record.user_id, email=render("renewal", message, user.email))
