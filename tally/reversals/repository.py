"""Reading disputes for the operator (``tally disputes`` and the Disputes page of ``/admin``): the open ones,
soonest evidence deadline first, from the partial index ``ix_disputes_open``; the recently closed ones, newest
first, from ``ix_disputes_stripe_created``. Each read is an index range with a limit: the disputes table only
grows, and no page or command scans it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .models import OPEN_STATUSES

# Spelled out as literals, not parameters: the planner uses a partial index only when it can prove the query's
# condition implies the index's, which it cannot do for a bound list (a generic plan).
_OPEN = "status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"
_COLUMNS = ("id, user_id, charge_id, order_id, subscription_invoice_id, amount, currency, reason, status, "
            "evidence_due_by, credits_withdrawn, credits_reinstated, stripe_created")
OPEN_SQL = text(f"SELECT {_COLUMNS} FROM disputes WHERE {_OPEN} "
                "ORDER BY evidence_due_by ASC NULLS LAST, id LIMIT :limit")
CLOSED_SQL = text(f"SELECT {_COLUMNS} FROM disputes WHERE NOT ({_OPEN}) ORDER BY stripe_created DESC LIMIT :limit")


@dataclass(frozen=True)
class DisputeLine:
    id: str
    user_id: str
    charge_id: str
    order_id: str | None
    subscription_invoice_id: str | None
    amount: int
    currency: str
    reason: str | None
    status: str
    evidence_due_by: int | None  # Unix time
    credits_withdrawn: int
    credits_reinstated: int
    stripe_created: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def due_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.evidence_due_by, UTC) if self.evidence_due_by else None

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.stripe_created, UTC)

    @property
    def paid_for(self) -> str:
        return f"order {self.order_id}" if self.order_id else f"invoice {self.subscription_invoice_id}"

    def days_left(self, now: datetime) -> int | None:
        """Whole days left to send evidence, counted up (due in 30 hours: 2 days); 0 or less once overdue."""
        if self.evidence_due_by is None:
            return None
        return math.ceil((self.evidence_due_by - now.timestamp()) / 86400)

    def time_left(self, now: datetime) -> str:
        """In words: ``3 days left``, ``due within a day``, ``overdue``, ``no deadline``."""
        if self.evidence_due_by is None:
            return "no deadline given"
        seconds = self.evidence_due_by - now.timestamp()
        if seconds <= 0:
            return "overdue"
        if seconds <= 86400:
            return "due within a day"
        days = self.days_left(now)
        return f"{days} days left"


def _lines(rows: Any) -> list[DisputeLine]:
    return [DisputeLine(**dict(r._mapping)) for r in rows]


async def open_disputes(session: AsyncSession, *, limit: int = 200) -> list[DisputeLine]:
    """Disputes still waiting on the seller or the network, the soonest evidence deadline first."""
    return _lines(await session.execute(OPEN_SQL, {"limit": limit}))


async def recently_closed(session: AsyncSession, *, limit: int = 50) -> list[DisputeLine]:
    """Won, lost or otherwise finished disputes, the most recently opened first."""
    return _lines(await session.execute(CLOSED_SQL, {"limit": limit}))
