"""``tally sync``: heal what webhooks missed, from Stripe's own records.

Two passes, both safe to run at any time and any number of times:

1. **Events.** Stripe's events since the cursor (Stripe keeps 30 days) are listed and each one of a type Tally
   handles goes into the webhook inbox through the receiver's own ``store_event`` (insert once, queue its job
   in the same commit). An event that was delivered is a duplicate there and nothing happens; one that never
   arrived is processed by the worker exactly as if it had.
2. **Objects.** Paid Checkout Sessions, succeeded PaymentIntents and paid subscription invoices created in the
   window are compared with the ledger: an order not yet paid, or a paid invoice not yet recorded, is repaired
   at once through the same idempotent fulfilment the webhook handlers use (``orders.events.on_*``,
   ``subscriptions.billing.on_invoice``), so the credits are there when the command returns, worker or not.
   Exactly once holds because those functions take the order/subscription row lock and write the ledger under
   unique references; the row lock here only decides what to report as repaired.

The cursor trails the run by ``LAG`` seconds, because an event created a moment ago may not be listed yet;
re-listing a few minutes of events costs a page and stores nothing twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import procrastinate
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from ..config import Settings
from ..db import Database
from ..orders.events import on_checkout_session, on_payment_intent
from ..orders.models import Order
from ..orders.repository import OrderNotFoundYet, lock_order
from ..stripe_gateway import StripeGateway, stripe_call
from ..subscriptions import billing
from ..subscriptions.invoices import subscription_of
from ..subscriptions.models import SubscriptionInvoice
from ..subscriptions.plans import plan_book
from ..webhooks.dispatch import load_handlers
from .models import ReconcileCursor
from .store import store_listed_event

log = logging.getLogger("tally.reconcile")

CURSOR = "stripe"
RETENTION_SECONDS = 30 * 86400  # Stripe lists events of the last 30 days only
LAG_SECONDS = 300  # the cursor trails each run: recent events may not be listed yet
# Objects are compared over a wider window than events: a Checkout Session is paid up to 24 h after it was
# created, a bank debit settles days later, and an object is listed by its creation time.
OBJECT_MARGIN_SECONDS = 3 * 86400
PAGE = 100


@dataclass
class Repair:
    kind: str  # order | subscription_invoice
    stripe_id: str  # cs_… / pi_… / in_…
    record: str  # the order id, or the invoice id
    detail: str


@dataclass
class SyncReport:
    since: int  # events after this (unix seconds) were listed
    until: int  # ... up to this one
    objects_since: int
    cursor: int  # where the next run starts
    events_listed: int = 0
    events_stored: list[str] = field(default_factory=list)  # never arrived; now in the inbox and queued
    checked: dict[str, int] = field(default_factory=dict)
    repaired: list[Repair] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # objects naming records this database does not have
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the cursor -----------------------------------------------------------------------------------
async def read_cursor(db: Database) -> ReconcileCursor | None:
    async with db.transaction() as session:
        return await session.get(ReconcileCursor, CURSOR)


async def save_cursor(db: Database, report: SyncReport) -> None:
    values = {"name": CURSOR, "cursor": report.cursor, "last_run_at": datetime.now(UTC),
              "last_report": orjson.loads(orjson.dumps(report.as_json()))}
    stmt = insert(ReconcileCursor).values(**values)
    async with db.transaction() as session:
        # Never move the cursor back (two runs at once: the later cursor wins).
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"cursor": stmt.excluded.cursor, "last_run_at": stmt.excluded.last_run_at,
                  "last_report": stmt.excluded.last_report},
            where=(ReconcileCursor.cursor.is_(None)) | (ReconcileCursor.cursor <= stmt.excluded.cursor)))


# -- the run --------------------------------------------------------------------------------------
async def sync(db: Database, jobs: procrastinate.App, client: StripeGateway, settings: Settings, *,
               since: int | None = None, grace: int = 0, now: int | None = None) -> SyncReport:
    """One reconciliation run. ``since`` overrides the stored cursor (``tally sync --since``). ``grace``
    leaves alone events and objects younger than that many seconds, whose webhooks may still be on their
    way (the periodic task uses it; an operator's ``tally sync`` looks at everything)."""
    now = int(time.time()) if now is None else now
    oldest = now - RETENTION_SECONDS
    if since is None:
        row = await read_cursor(db)
        since = row.cursor if row is not None and row.cursor is not None else oldest
    until = now - grace
    report = SyncReport(since=max(since, oldest), until=until,
                        objects_since=max(0, since - OBJECT_MARGIN_SECONDS),
                        cursor=max(since, now - max(LAG_SECONDS, grace)))
    if since < oldest:
        report.warnings.append(
            f"the last sync was more than 30 days ago: events before {_iso(oldest)} are no longer listed by "
            "Stripe; paid objects since the last sync are still compared with the ledger")
    await _store_missing_events(jobs, client, settings, report)
    await _repair_checkout_sessions(db, client, settings, report)
    await _repair_payment_intents(db, client, settings, report)
    await _repair_invoices(db, client, settings, report)
    await save_cursor(db, report)
    if report.events_stored or report.repaired:
        log.warning("sync: %d missed events stored, %d records repaired", len(report.events_stored),
                    len(report.repaired))
    return report


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


async def _store_missing_events(jobs: procrastinate.App, client: StripeGateway, settings: Settings,
                                report: SyncReport) -> None:
    handled = set(load_handlers())
    async with stripe_call("listing events"):
        async for event in client.every_event({"created": {"gt": report.since, "lte": report.until},
                                               "limit": PAGE}):
            report.events_listed += 1
            if event["type"] not in handled or bool(event.get("livemode")) != settings.live_mode:
                continue
            if await store_listed_event(jobs, event):
                report.events_stored.append(event["id"])


# Whether this transaction inserted the row (its xmin is our transaction id), rather than an event's handler
# that committed it while this run was looking.
_WRITTEN_HERE = text("SELECT xmin = pg_current_xact_id()::xid FROM subscription_invoices WHERE id = :id")


def _window(report: SyncReport) -> dict[str, int]:
    return {"gt": report.objects_since, "lte": report.until}


def _order_id(metadata: dict[str, Any] | None) -> str | None:
    value = (metadata or {}).get("order_id")
    return str(value) if value else None


async def _unpaid_orders(db: Database, order_ids: set[str]) -> set[str]:
    if not order_ids:
        return set()
    async with db.transaction() as session:
        rows = await session.execute(select(Order.id, Order.status).where(Order.id.in_(order_ids)))
        found = {order_id: status for order_id, status in rows}
    return {order_id for order_id, status in found.items() if status not in ("paid", "refunded")} | \
        {order_id for order_id in order_ids if order_id not in found}


async def _repair_order(db: Database, report: SyncReport, order_id: str, stripe_id: str, apply: Any) -> None:
    """Apply Stripe's state to one order under its row lock; report it if this run made it paid."""
    try:
        async with db.transaction() as session:
            order = await lock_order(session, order_id)
            if order is None:
                report.skipped.append(f"{stripe_id} names order {order_id}, which is not in this database")
                return
            if order.status in ("paid", "refunded"):
                return  # its event got there first
            await apply(session)
            await session.refresh(order)
            if order.status == "paid":
                report.repaired.append(Repair("order", stripe_id, order_id,
                                              f"credited {order.total_coins} coins to {order.user_id}"))
    except OrderNotFoundYet:
        report.skipped.append(f"{stripe_id}: order {order_id} is not committed yet")


async def _repair_checkout_sessions(db: Database, client: StripeGateway, settings: Settings,
                                    report: SyncReport) -> None:
    async with stripe_call("listing checkout sessions"):
        sessions = await client.list_checkout_sessions({"created": _window(report), "status": "complete",
                                                        "limit": PAGE})
    paid = {order_id: s["id"] for s in sessions
            if s.get("mode") == "payment" and s.get("payment_status") == "paid"
            and (order_id := _order_id(s.get("metadata")))}
    report.checked["checkout_sessions"] = len(sessions)
    for order_id in sorted(await _unpaid_orders(db, set(paid))):
        session_id = paid[order_id]
        await _repair_order(db, report, order_id, session_id, lambda s, cs=session_id: on_checkout_session(
            s, client, settings=settings, checkout_session_id=cs))


async def _repair_payment_intents(db: Database, client: StripeGateway, settings: Settings,
                                  report: SyncReport) -> None:
    async with stripe_call("listing payment intents"):
        intents = await client.list_payment_intents({"created": _window(report), "limit": PAGE})
    succeeded = {order_id: pi["id"] for pi in intents
                 if pi.get("status") == "succeeded" and (order_id := _order_id(pi.get("metadata")))}
    report.checked["payment_intents"] = len(intents)
    for order_id in sorted(await _unpaid_orders(db, set(succeeded))):
        pi_id = succeeded[order_id]
        await _repair_order(db, report, order_id, pi_id, lambda s, pi=pi_id: on_payment_intent(
            s, client, settings=settings, payment_intent_id=pi))


async def _repair_invoices(db: Database, client: StripeGateway, settings: Settings,
                           report: SyncReport) -> None:
    async with stripe_call("listing invoices"):
        invoices = await client.list_invoices({"created": _window(report), "status": "paid", "limit": PAGE})
    paid = [inv for inv in invoices if inv.get("status") == "paid" and subscription_of(inv)]
    report.checked["invoices"] = len(invoices)
    if not paid:
        return
    async with db.transaction() as session:
        recorded = set((await session.execute(select(SubscriptionInvoice.id).where(
            SubscriptionInvoice.id.in_([inv["id"] for inv in paid])))).scalars())
    book = plan_book(settings)
    for invoice in paid:
        if invoice["id"] in recorded:
            continue
        async with db.transaction() as session:
            await billing.on_invoice(session, client, settings=settings, book=book, invoice_id=invoice["id"])
            row = await session.get(SubscriptionInvoice, invoice["id"])
            if row is None:
                report.skipped.append(f"{invoice['id']}: its subscription is not one of this Tally's")
                continue
            if await session.scalar(_WRITTEN_HERE, {"id": invoice["id"]}):  # not by its event meanwhile
                report.repaired.append(Repair("subscription_invoice", invoice["id"], invoice["id"],
                                              f"recorded; {row.credits} credits granted to {row.user_id}"))
