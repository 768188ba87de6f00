"""Response shapes of the catalog."""

from __future__ import annotations

from pydantic import BaseModel

from .service import Catalog


class PackOut(BaseModel):
    id: str
    name: str
    amount: int  # minor units of `currency`
    currency: str
    coins: int
    bonus: int
    lookup_key: str


class PlanOut(BaseModel):
    id: str
    name: str
    amount: int
    currency: str
    interval: str
    coins: int
    lookup_key: str


class CatalogOut(BaseModel):
    packs: list[PackOut]
    plans: list[PlanOut]

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogOut:
        return cls(
            packs=[PackOut(id=p.id, name=p.name, amount=p.amount, currency=p.currency, coins=p.coins, bonus=p.bonus,
                           lookup_key=p.lookup_key) for p in catalog.packs.values()],
            plans=[PlanOut(id=p.id, name=p.name, amount=p.amount, currency=p.currency, interval=p.interval,
                           coins=p.coins, lookup_key=p.lookup_key) for p in catalog.plans.values()])
