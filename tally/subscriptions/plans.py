"""Subscription plans: read from a TOML file (``TALLY_PLANS``, default ``default_plans.toml``), validated
strictly, and synced to Stripe as one Product per plan and one recurring Price per interval, found again by
lookup key ``plan:<id>:<interval>``.

Why a file of its own rather than the catalog's ``[[plans]]``: the catalog's ``Plan`` has one amount and one
interval and no features, and its parser refuses unknown fields, so an extended ``[[plans]]`` table could not
live in the catalog file without breaking it. When the catalog grows annual prices and features, this module
can read them from there instead; nothing else changes (the rest of Tally only sees ``PlanBook``).

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
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stripe

from .. import currency as money
from ..catalog.service import ID_PATTERN
from ..stripe_gateway import idempotency_key, stripe_call, update_key

PLAN_INTERVALS = ("month", "year")
PLAN_FIELDS = {"id", "name", "rank", "currency", "month", "year", "features", "description", "credits_expire", "rollover_cap"}
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
def load_plans(path: Path | str) -> PlanBook:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read the plans file {path}: {exc.strerror}") from None
    return parse_plans(text, source=str(path))


def parse_plans(text: str, *, source: str = "plans") -> PlanBook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"plans"}
    if unknown:
        raise PlanError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
    entries = data.get("plans", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PlanError(f"{source}: 'plans' must be an array of tables ([[plans]])")
    plans: dict[str, SubscriptionPlan] = {}
    for index, entry in enumerate(entries):
        plan = _plan(entry, f"{source}: plans[{index}]")
        if plan.id in plans:
            raise PlanError(f"{source}: duplicate plan id {plan.id!r}")
        plans[plan.id] = plan
    return PlanBook(plans)


def _plan(entry: dict[str, Any], where: str) -> SubscriptionPlan:
    unknown = set(entry) - PLAN_FIELDS
    if unknown:
        raise PlanError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    plan_id = entry.get("id")
    if not isinstance(plan_id, str) or not ID_PATTERN.match(plan_id):
        raise PlanError(f"{where}: 'id' must match {ID_PATTERN.pattern}")
    where = f"{where} ({plan_id})"
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PlanError(f"{where}: 'name' must be a non-empty string")
    rank = entry.get("rank", 0)
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise PlanError(f"{where}: 'rank' must be an integer")
    try:
        currency = money.normalize(str(entry.get("currency", "")))
    except money.CurrencyError as exc:
        raise PlanError(f"{where}: {exc}") from None
    prices: dict[str, PlanPrice] = {}
    for interval in PLAN_INTERVALS:
        spec = entry.get(interval)
        if spec is None:
            continue
        if not isinstance(spec, dict) or set(spec) - {"amount", "credits"}:
            raise PlanError(f"{where}: '{interval}' must be {{ amount = <minor units>, credits = <n> }}")
        try:
            money.check_amount(spec.get("amount"), currency)  # type: ignore[arg-type]
        except money.CurrencyError as exc:
            raise PlanError(f"{where}: {interval}.amount: {exc}") from None
        credits = spec.get("credits", 0)
        if isinstance(credits, bool) or not isinstance(credits, int) or not 0 <= credits <= MAX_CREDITS:
            raise PlanError(f"{where}: {interval}.credits must be an integer from 0 to {MAX_CREDITS}")
        prices[interval] = PlanPrice(interval, spec["amount"], credits)
    if not prices:
        raise PlanError(f"{where}: a plan needs a 'month' or a 'year' price")
    features = entry.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        raise PlanError(f"{where}: 'features' must be a list of strings")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        raise PlanError(f"{where}: 'description' must be a string")
    credits_expire = entry.get("credits_expire", "never")
    if credits_expire not in CREDITS_EXPIRE:
        raise PlanError(f"{where}: 'credits_expire' must be one of {', '.join(CREDITS_EXPIRE)}")
    rollover_cap = entry.get("rollover_cap", 0)
    if isinstance(rollover_cap, bool) or not isinstance(rollover_cap, int) or not 0 <= rollover_cap <= MAX_CREDITS:
        raise PlanError(f"{where}: 'rollover_cap' must be an integer from 0 to {MAX_CREDITS}")
    if rollover_cap and credits_expire != "period_end":
        raise PlanError(f"{where}: 'rollover_cap' needs credits_expire = \"period_end\"")
    return SubscriptionPlan(id=plan_id, name=name.strip(), rank=rank, currency=currency, prices=prices,
                            features=tuple(dict.fromkeys(features)), description=description,
                            credits_expire=credits_expire, rollover_cap=rollover_cap)


# -- Stripe ---------------------------------------------------------------------------------------
async def sync_plan_price(client: stripe.StripeClient, plan: SubscriptionPlan, interval: str) -> str:
    """Ensure the plan's Product and the interval's recurring Price exist; returns the price id. Idempotent
    and safe from several processes: our own product id, lookup keys, deterministic idempotency keys."""
    price_spec = plan.prices[interval]
    lookup_key = plan.lookup_key(interval)
    await _ensure_product(client, plan)
    async with stripe_call("looking up a plan price"):
        found = await client.v1.prices.list_async(params={"lookup_keys": [lookup_key], "limit": 1})
    current = found.data[0].to_dict() if found.data else None
    if current is not None and _matches(current, plan, price_spec):
        return str(current["id"])
    async with stripe_call("creating a plan price"):
        created = (await client.v1.prices.create_async(params={
            "product": plan.product_id, "unit_amount": price_spec.amount, "currency": plan.currency,
            "recurring": {"interval": interval}, "lookup_key": lookup_key, "transfer_lookup_key": True,
            "metadata": {"tally_plan_id": plan.id, "interval": interval, "credits": str(price_spec.credits)},
        }, options={"idempotency_key": idempotency_key(
            "plan", plan.id, f"price:{interval}:{plan.currency}:{price_spec.amount}:{price_spec.credits}")})).to_dict()
        if created.get("lookup_key") != lookup_key:  # an idempotent replay of a price that lost the key since
            rekey: dict[str, Any] = {"lookup_key": lookup_key, "transfer_lookup_key": True}
            await client.v1.prices.update_async(created["id"], params=rekey,  # type: ignore[arg-type]
                                                options={"idempotency_key": update_key("price", created["id"], rekey)})
        if current is not None and current.get("active"):
            # Existing subscriptions keep the old price (and its credits, from its metadata); new ones don't.
            await client.v1.prices.update_async(current["id"], params={"active": False}, options={
                "idempotency_key": update_key("price", current["id"], {"active": False})})
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


async def _ensure_product(client: stripe.StripeClient, plan: SubscriptionPlan) -> None:
    async with stripe_call("syncing a plan product"):
        try:
            product = (await client.v1.products.retrieve_async(plan.product_id)).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            await client.v1.products.create_async(params={
                "id": plan.product_id, "name": plan.name, "metadata": {"tally_plan_id": plan.id},
                **({"description": plan.description} if plan.description else {}),
            }, options={"idempotency_key": idempotency_key("plan", plan.id, "product")})
            return
        if product.get("name") != plan.name or not product.get("active"):
            wanted = {"name": plan.name, "active": True}
            await client.v1.products.update_async(plan.product_id, params=wanted,  # type: ignore[arg-type]
                                                  options={"idempotency_key": update_key("product", plan.product_id,
                                                                                         wanted)})


async def sync_plans(client: stripe.StripeClient, book: PlanBook) -> dict[str, str]:
    """Every plan price; lookup key → price id (for ``tally catalog sync``-like tooling and tests)."""
    return {plan.lookup_key(i): await sync_plan_price(client, plan, i)
            for plan in book.plans.values() for i in plan.prices}


class PlanPrices:
    """(plan, interval) → Stripe price id, cached per process; a miss syncs that one price."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, int, int], str] = {}
        self._lock = asyncio.Lock()

    async def price_id(self, client: stripe.StripeClient, plan: SubscriptionPlan, interval: str) -> str:
        spec = plan.prices[interval]
        key = (plan.id, interval, spec.amount, spec.credits)
        if key not in self._ids:
            async with self._lock:
                if key not in self._ids:
                    self._ids[key] = await sync_plan_price(client, plan, interval)
        return self._ids[key]


async def match_plan_price(client: stripe.StripeClient, book: PlanBook, prices: PlanPrices,
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
