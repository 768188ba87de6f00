"""The account page's wallet: the balance, what can be spent now, what work in progress holds, and when the
credits expire (the grants still holding credits, grouped by expiry, the never-expiring ones last)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..ledger.service import BalanceView


@dataclass(frozen=True)
class Expiry:
    amount: int
    expires_at: datetime | None  # None: never
    soon: bool  # within the next 30 days (the API's expiring_soon)


@dataclass(frozen=True)
class Wallet:
    balance: int
    available: int
    held: int
    debt: int
    schedule: list[Expiry]  # soonest first; the never-expiring credits last


def wallet_view(view: BalanceView) -> Wallet:
    soon = {at for _, at in view.expiring_soon}
    by_expiry: dict[datetime | None, int] = {}
    for grant in view.grants:
        by_expiry[grant.expires_at] = by_expiry.get(grant.expires_at, 0) + grant.remaining
    dated = sorted((at, amount) for at, amount in by_expiry.items() if at is not None)
    schedule = [Expiry(amount, at, at in soon) for at, amount in dated]
    if by_expiry.get(None):
        schedule.append(Expiry(by_expiry[None], None, False))
    return Wallet(view.balance, view.available, view.held, view.debt, schedule)
