"""Subscription plans: read from a TOML file (``TALLY_PLANS``, default ``default_plans.toml``), validated
strictly, and synced to Stripe as one Product per plan and one recurring Price per interval, found again by
lookup key ``plan:<id>:<interval>``.

The one plan model of Tally: ``GET /v1/plans``, ``GET /v1/catalog``, the pages and the compatibility routes all
read this file (the catalog file holds packs only). Validated through pydantic models (``PlanEntry``): every
wrong field is reported with the file and the key.

Upgrade credit rule (one place, used by ``service.change_plan``)::

    extra = floor((new_credits - old_credits) × remaining_seconds / period_seconds)

with ``new_credits``/``old_credits`` the credits per period of the two prices, ``remaining_seconds`` the time
from the change (Stripe's ``proration_date``) to the period end and ``period_seconds`` the whole current
period. Rounded down so that a user is never granted more than the time paid for; granted once per change.
A change of interval (month → year) starts a new period at once: the new period's invoice grants the new
plan's full credits, and the credits for the unused old time are not taken back (Stripe credits the money).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Annotated, Any

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from .. import currency as money
from ..errors import InvalidRequest
from ..catalog.service import ID_PATTERN
from ..catalog.toml_file import FileModel, currency_code, parse_toml, read_toml
from ..stripe_gateway import (StripeGateway, ensure_product, idempotency_key, stripe_call, update_key)

PLAN_INTERVALS = ("month", "year")
MAX_CREDITS = 10**12


CREDITS_EXPIRE = ("never", "period_end")


class PlanError(ValueError):
    """The plans file is unreadable or breaks a rule; the message names the offending entry."""


@dataclass(frozen=True)
class PlanPrice:
    interval: str
    amount: int  # minor units of the plan's currency
    credits: int  # granted for each paid period of this interval


@dataclass(frozen=True)
class SubscriptionPlan:
    id: str
    name: str
    rank: int
    currency: str
    prices: dict[str, PlanPrice]  # interval → price
    features: tuple[str, ...]
    description: str | None = None
    # "period_end": a period's credits lapse when it ends (up to rollover_cap of them carry into the next);
    # "never": they stay until spent.
    credits_expire: str = "never"
    rollover_cap: int = 0

    @property
    def product_id(self) -> str:
        return f"tally_plan_{self.id}"

    def lookup_key(self, interval: str) -> str:
        return f"plan:{self.id}:{interval}"

    def price(self, interval: str) -> PlanPrice | None:
        return self.prices.get(interval)


def parse_lookup_key(lookup_key: str | None) -> tuple[str, str] | None:
    """``plan:<id>:<interval>`` → (plan id, interval); None for anything else."""
    if not lookup_key or not lookup_key.startswith("plan:"):
        return None
    parts = lookup_key.split(":")
    if len(parts) != 3 or parts[2] not in PLAN_INTERVALS:
        return None
    return parts[1], parts[2]


def upgrade_credits(old_credits: int, new_credits: int, remaining_seconds: int, period_seconds: int) -> int:
    """The prorated credit difference of an upgrade (see the module docstring); 0 when nothing is owed."""
    if period_seconds <= 0 or remaining_seconds <= 0 or new_credits <= old_credits:
        return 0
    return (new_credits - old_credits) * min(remaining_seconds, period_seconds) // period_seconds


@dataclass(frozen=True)
class PlanBook:
    plans: dict[str, SubscriptionPlan]

    def get(self, plan_id: str) -> SubscriptionPlan | None:
        return self.plans.get(plan_id)

    def require(self, plan_id: str, interval: str, *, param: str) -> SubscriptionPlan:
        """The plan with a price for ``interval``, or a 400 naming the request's ``param`` (and the plans)."""
        plan = self.get(plan_id)
        if plan is None:
            raise InvalidRequest(f"No such plan: {plan_id!r}. Plans: {', '.join(self.plans)}.", param=param)
        if plan.price(interval) is None:
            raise InvalidRequest(f"The {plan.name} plan has no {interval}ly price.", param="interval")
        return plan

    def ranked(self) -> list[SubscriptionPlan]:
        """The plans from the lowest rank to the highest (how they are listed)."""
        return sorted(self.plans.values(), key=lambda p: p.rank)

    def by_lookup_key(self, lookup_key: str | None) -> tuple[SubscriptionPlan, PlanPrice] | None:
        parsed = parse_lookup_key(lookup_key)
        if parsed is None:
            return None
        plan = self.plans.get(parsed[0])
        price = plan.price(parsed[1]) if plan else None
        return (plan, price) if plan and price else None

    def for_price(self, price: dict[str, Any] | None) -> tuple[SubscriptionPlan, PlanPrice] | None:
        """The plan behind a Stripe price object: by lookup key, else by the product's and interval's
        metadata (a superseded price has lost its lookup key but still bills old subscriptions)."""
        if not price:
            return None
        found = self.by_lookup_key(price.get("lookup_key"))
        if found is not None:
            return found
        meta = price.get("metadata") or {}
        plan = self.plans.get(str(meta.get("tally_plan_id", "")))
        interval = str(meta.get("interval", ""))
        if plan is None or plan.price(interval) is None:
            return None
        # Credits follow what the old price said it granted, not today's catalog.
        credits = int(meta.get("credits", plan.prices[interval].credits))
        return plan, PlanPrice(interval, int(price.get("unit_amount") or 0), credits)


# -- loading --------------------------------------------------------------------------------------
class PlanPriceEntry(FileModel):
    """``month = { amount = 900, credits = 1000 }``."""

    amount: int  # minor units of the plan's currency
    credits: Annotated[int, Field(ge=0, le=MAX_CREDITS)] = 0


class PlanEntry(FileModel):
    """A ``[[plans]]`` entry of the plans file."""

    id: Annotated[str, StringConstraints(pattern=ID_PATTERN.pattern)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    rank: int = 0
    currency: str
    month: PlanPriceEntry | None = None
    year: PlanPriceEntry | None = None
    features: list[Annotated[str, StringConstraints(min_length=1)]] = []
    description: str | None = None
    credits_expire: Literal["never", "period_end"] = "never"
    rollover_cap: Annotated[int, Field(ge=0, le=MAX_CREDITS)] = 0

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return currency_code(value)

    @field_validator("month", "year")
    @classmethod
    def _amount(cls, price: PlanPriceEntry | None, info: ValidationInfo) -> PlanPriceEntry | None:
        if price is not None and "currency" in info.data:
            money.check_amount(price.amount, info.data["currency"])
        return price

    @model_validator(mode="after")
    def _priced(self) -> PlanEntry:
        if self.month is None and self.year is None:
            raise ValueError("a plan needs a 'month' or a 'year' price")
        if self.rollover_cap and self.credits_expire != "period_end":
            raise ValueError("'rollover_cap' needs credits_expire = \"period_end\"")
        return self

    def plan(self) -> SubscriptionPlan:
        prices = {interval: PlanPrice(interval, spec.amount, spec.credits)
                  for interval, spec in (("month", self.month), ("year", self.year)) if spec is not None}
        return SubscriptionPlan(id=self.id, name=self.name, rank=self.rank, currency=self.currency, prices=prices,
                                features=tuple(dict.fromkeys(self.features)), description=self.description,
                                credits_expire=self.credits_expire, rollover_cap=self.rollover_cap)


class PlansFile(FileModel):
    plans: list[PlanEntry] = []

    @field_validator("plans")
    @classmethod
    def _unique_ids(cls, plans: list[PlanEntry]) -> list[PlanEntry]:
        ids = [p.id for p in plans]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate plan id {duplicates[0]!r}")
        return plans


def load_plans(path: Path | str) -> PlanBook:
    return parse_plans(read_toml(path, "plans file", PlanError), source=str(path))


def parse_plans(text: str, *, source: str = "plans") -> PlanBook:
    parsed = parse_toml(text, PlansFile, source=source, error=PlanError)
    return PlanBook({entry.id: entry.plan() for entry in parsed.plans})


# -- Stripe ---------------------------------------------------------------------------------------
async def sync_plan_price(client: StripeGateway, plan: SubscriptionPlan, interval: str) -> str:
    """Ensure the plan's Product and the interval's recurring Price exist; returns the price id. Idempotent
    and safe from several processes: our own product id, lookup keys, deterministic idempotency keys."""
    price_spec = plan.prices[interval]
    lookup_key = plan.lookup_key(interval)
    await _ensure_product(client, plan)
    async with stripe_call("looking up a plan price"):
        current = await client.find_price(lookup_key)
    if current is not None and _matches(current, plan, price_spec):
        return str(current["id"])
    async with stripe_call("creating a plan price"):
        created = await client.create_price({
            "product": plan.product_id, "unit_amount": price_spec.amount, "currency": plan.currency,
            "recurring": {"interval": interval}, "lookup_key": lookup_key, "transfer_lookup_key": True,
            "metadata": {"tally_plan_id": plan.id, "interval": interval, "credits": str(price_spec.credits)},
        }, idempotency_key=idempotency_key(
            "plan", plan.id, f"price:{interval}:{plan.currency}:{price_spec.amount}:{price_spec.credits}"))
        if created.get("lookup_key") != lookup_key:  # an idempotent replay of a price that lost the key since
            rekey: dict[str, Any] = {"lookup_key": lookup_key, "transfer_lookup_key": True}
            await client.update_price(created["id"], rekey, idempotency_key=update_key("price", created["id"], rekey))
        if current is not None and current.get("active"):
            # Existing subscriptions keep the old price (and its credits, from its metadata); new ones don't.
            await client.update_price(current["id"], {"active": False},
                                      idempotency_key=update_key("price", current["id"], {"active": False}))
    return str(created["id"])


def _matches(price: dict[str, Any], plan: SubscriptionPlan, spec: PlanPrice) -> bool:
    product = price.get("product")
    product_id = product if isinstance(product, str) else (product or {}).get("id")
    recurring = price.get("recurring") or {}
    meta = price.get("metadata") or {}
    return (price.get("unit_amount") == spec.amount and price.get("currency") == plan.currency
            and product_id == plan.product_id and bool(price.get("active"))
            and recurring.get("interval") == spec.interval and recurring.get("interval_count", 1) == 1
            and str(meta.get("credits")) == str(spec.credits))


async def _ensure_product(client: StripeGateway, plan: SubscriptionPlan) -> None:
    async with stripe_call("syncing a plan product"):
        await ensure_product(client, plan.product_id, name=plan.name, description=plan.description,
                             metadata={"tally_plan_id": plan.id},
                             create_key=idempotency_key("plan", plan.id, "product"))


async def sync_plans(client: StripeGateway, book: PlanBook) -> dict[str, str]:
    """Every plan price; lookup key → price id (for ``tally catalog sync``-like tooling and tests)."""
    return {plan.lookup_key(i): await sync_plan_price(client, plan, i)
            for plan in book.plans.values() for i in plan.prices}


class PlanPrices:
    """(plan, interval) → Stripe price id, cached per process; a miss syncs that one price."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, int, int], str] = {}
        self._lock = asyncio.Lock()

    async def price_id(self, client: StripeGateway, plan: SubscriptionPlan, interval: str) -> str:
        spec = plan.prices[interval]
        key = (plan.id, interval, spec.amount, spec.credits)
        if key not in self._ids:
            async with self._lock:
                if key not in self._ids:
                    self._ids[key] = await sync_plan_price(client, plan, interval)
        return self._ids[key]


async def match_plan_price(client: StripeGateway, book: PlanBook, prices: PlanPrices,
                           reference: str) -> tuple[SubscriptionPlan, str] | None:
    """The plan and interval a client's price reference names: a lookup key ``plan:<id>:<interval>``, or the
    Stripe price id such a key points at now. Anything else names no plan (clients never invent prices)."""
    found = book.by_lookup_key(reference)
    if found is not None:
        return found[0], found[1].interval
    if not reference.startswith("price_"):
        return None
    for plan in book.plans.values():
        for interval in plan.prices:
            if await prices.price_id(client, plan, interval) == reference:
                return plan, interval
    return None


_books: dict[Path, PlanBook] = {}


def plan_book(settings: Any) -> PlanBook:
    """The plans of ``settings.plans_path``, read once per process."""
    path = Path(settings.plans_path)
    if path not in _books:
        _books[path] = load_plans(path)
    return _books[path]
