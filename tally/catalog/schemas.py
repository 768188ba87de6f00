"""Response shapes of the catalog and of the payment methods per currency."""

from __future__ import annotations

from pydantic import BaseModel

from ..subscriptions.plans import PlanBook
from ..subscriptions.schemas import PlanOut
from .service import Catalog


class PackOut(BaseModel):
    id: str
    name: str
    amount: int  # minor units of `currency`
    currency: str
    coins: int
    bonus: int
    lookup_key: str


class CatalogOut(BaseModel):
    packs: list[PackOut]
    plans: list[PlanOut]  # the subscription plans of the plans file (TALLY_PLANS), as GET /v1/plans lists them

    @classmethod
    def of(cls, catalog: Catalog, book: PlanBook, currency: str | None = None) -> CatalogOut:
        """The catalog in its primary prices, or, with ``currency``, the packs and plans sold in that currency
        at their price in it (same shape: one currency per view, as one order has one currency)."""
        packs = []
        for p in catalog.packs.values():
            code = currency or p.currency
            amount = p.amount_in(code)
            if amount is not None:
                packs.append(PackOut(id=p.id, name=p.name, amount=amount, currency=code, coins=p.coins,
                                     bonus=p.bonus, lookup_key=p.lookup_key))
        plans = [PlanOut.of(p) for p in book.ranked() if currency in (None, p.currency)]
        return cls(packs=packs, plans=plans)


class PaymentMethodsOut(BaseModel):
    currency: str
    payment_method_types: list[str]  # for one-time purchases (packs), in display order
    recurring_payment_method_types: list[str]  # for recurring prices: without the one-time-only methods
