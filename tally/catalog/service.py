"""The catalog: credit packs (and, later, plans) read from a TOML file, validated strictly, and synced to
Stripe Products/Prices found again by lookup key. Prices come only from here, never from a client."""

from __future__ import annotations

import asyncio
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe

from .. import currency as money
from ..stripe_gateway import idempotency_key, stripe_call, update_key
from .payment_methods import methods_for, retired_reason

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PACK_FIELDS = {"id", "name", "amount", "currency", "coins", "bonus", "lookup_key", "description", "prices",
               "expires_after_days"}
MAX_CREDIT_DAYS = 36500  # a hundred years: "never" is written by leaving the field out
PLAN_FIELDS = {"id", "name", "amount", "currency", "interval", "coins", "lookup_key", "description"}
INTERVALS = ("day", "week", "month", "year")
MAX_COINS = 10**12  # far above any sane pack; keeps ledger sums well inside BIGINT


class CatalogError(ValueError):
    """The catalog file is unreadable or breaks a rule; the message names the offending entry."""


@dataclass(frozen=True)
class Pack:
    id: str
    name: str
    amount: int  # minor units of `currency`
    currency: str  # lower-case ISO code
    coins: int
    bonus: int
    lookup_key: str
    description: str | None = None
    # The pack's price in other currencies (minor units): Checkout and PaymentIntent orders sell it in any of
    # them, one currency per order. ``amount``/``currency`` stay the primary price, the default everywhere.
    prices: dict[str, int] = field(default_factory=dict, hash=False)
    # The pack's credits (and bonus) expire this many days after payment; None: never.
    expires_after_days: int | None = None

    @property
    def product_id(self) -> str:
        return f"tally_pack_{self.id}"

    def amount_in(self, currency: str) -> int | None:
        """The pack's price in ``currency`` (lower-case), or None when it is not sold in that currency."""
        if currency == self.currency:
            return self.amount
        return self.prices.get(currency)

    @property
    def currencies(self) -> list[str]:
        return [self.currency, *self.prices]

    def lookup_key_in(self, currency: str) -> str:
        """The lookup key of the pack's Stripe Price in ``currency``: the pack's own for its primary currency
        (unchanged since single-currency catalogs), ``<lookup_key>_<currency>`` for the others."""
        return self.lookup_key if currency == self.currency else f"{self.lookup_key}_{currency}"

    @property
    def total_coins(self) -> int:
        return self.coins + self.bonus


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    amount: int
    currency: str
    interval: str
    coins: int
    lookup_key: str
    description: str | None = None


@dataclass(frozen=True)
class Catalog:
    packs: dict[str, Pack]
    plans: dict[str, Plan] = field(default_factory=dict)
    payment_methods: dict[str, list[str]] = field(default_factory=dict)

    def pack(self, pack_id: str) -> Pack | None:
        return self.packs.get(pack_id)

    def payment_method_types(self, currency: str, *, recurring: bool = False) -> list[str]:
        """The methods offered in ``currency``: the catalog's list, else Tally's defaults for it."""
        return methods_for(self.payment_methods, currency, recurring=recurring)

    def pack_by_reference(self, reference: str) -> Pack | None:
        """A pack by its id or its lookup key."""
        return self.packs.get(reference) or next(
            (p for p in self.packs.values() if p.lookup_key == reference), None)

    def plan_by_reference(self, reference: str) -> Plan | None:
        return self.plans.get(reference) or next(
            (p for p in self.plans.values() if p.lookup_key == reference), None)

    def pack_matching(self, *, amount: int, currency: str, coins: int, bonus: int) -> Pack | None:
        """The pack with exactly this primary price, coins and bonus (for clients that describe a pack
        instead of naming it; they still never choose the price)."""
        return next((p for p in self.packs.values() if (p.amount, p.currency, p.coins, p.bonus)
                     == (amount, currency, coins, bonus)), None)


# -- loading and validation ----------------------------------------------------------------------
def load_catalog(path: Path | str) -> Catalog:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog {path}: {exc.strerror}") from None
    return parse_catalog(text, source=str(path))


def parse_catalog(text: str, *, source: str = "catalog") -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"packs", "plans", "payment_methods"}
    if unknown:
        raise CatalogError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
    packs = [_pack(entry, i, source) for i, entry in enumerate(_tables(data.get("packs", []), "packs", source))]
    plans = [_plan(entry, i, source) for i, entry in enumerate(_tables(data.get("plans", []), "plans", source))]
    if not packs:
        raise CatalogError(f"{source}: the catalog has no [[packs]]")
    _unique([p.id for p in packs], "pack id", source)
    _unique([p.id for p in plans], "plan id", source)
    _unique([p.lookup_key_in(c) for p in packs for c in p.currencies] + [p.lookup_key for p in plans],
            "lookup_key", source)
    return Catalog(packs={p.id: p for p in packs}, plans={p.id: p for p in plans},
                   payment_methods=_payment_methods(data.get("payment_methods", {}), source))


def _tables(value: Any, name: str, source: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CatalogError(f"{source}: '{name}' must be an array of tables ([[{name}]])")
    return value


def _common(entry: dict[str, Any], allowed: set[str], where: str) -> dict[str, Any]:
    unknown = set(entry) - allowed
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        raise CatalogError(f"{where}: 'id' must match {ID_PATTERN.pattern}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise CatalogError(f"{where} ({entry_id}): 'name' must be a non-empty string")
    try:
        currency = money.normalize(_str(entry, "currency", where))
        money.check_amount(entry.get("amount"), currency)  # type: ignore[arg-type]
    except money.CurrencyError as exc:
        raise CatalogError(f"{where} ({entry_id}): {exc}") from None
    coins = _int(entry, "coins", where, minimum=1)
    lookup_key = entry.get("lookup_key", None)
    if lookup_key is not None and (not isinstance(lookup_key, str) or not 0 < len(lookup_key) <= 200):
        raise CatalogError(f"{where} ({entry_id}): 'lookup_key' must be a string of at most 200 characters")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        raise CatalogError(f"{where} ({entry_id}): 'description' must be a string")
    return {"id": entry_id, "name": name.strip(), "amount": entry["amount"], "currency": currency,
            "coins": coins, "lookup_key": lookup_key, "description": description}


def _pack(entry: dict[str, Any], index: int, source: str) -> Pack:
    where = f"{source}: packs[{index}]"
    common = _common(entry, PACK_FIELDS, where)
    bonus = _int(entry, "bonus", where, minimum=0, default=0)
    common["lookup_key"] = common["lookup_key"] or f"tally_pack_{common['id']}"
    prices = _other_prices(entry.get("prices", {}), common["currency"], common["amount"],
                           f"{where} ({common['id']})")
    expires = entry.get("expires_after_days")
    if expires is not None:
        expires = _int(entry, "expires_after_days", f"{where} ({common['id']})", minimum=1)
        if expires > MAX_CREDIT_DAYS:
            raise CatalogError(f"{where} ({common['id']}): 'expires_after_days' must be at most {MAX_CREDIT_DAYS}")
    return Pack(bonus=bonus, prices=prices, expires_after_days=expires, **common)


def _other_prices(value: Any, primary: str, primary_amount: int, where: str) -> dict[str, int]:
    """``prices = { eur = 459, myr = 2290 }``: the pack in other currencies, minor units each."""
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: 'prices' must be a table of currency = amount (minor units)")
    prices: dict[str, int] = {}
    for code, amount in value.items():
        try:
            currency = money.normalize(code)
            money.check_amount(amount, currency)
        except money.CurrencyError as exc:
            raise CatalogError(f"{where}: prices.{code}: {exc}") from None
        if currency == primary and amount != primary_amount:
            raise CatalogError(f"{where}: prices.{code} contradicts the pack's amount")
        if currency != primary:
            prices[currency] = amount
    return prices


def _plan(entry: dict[str, Any], index: int, source: str) -> Plan:
    where = f"{source}: plans[{index}]"
    common = _common(entry, PLAN_FIELDS, where)
    interval = entry.get("interval")
    if interval not in INTERVALS:
        raise CatalogError(f"{where} ({common['id']}): 'interval' must be one of {', '.join(INTERVALS)}")
    common["lookup_key"] = common["lookup_key"] or f"tally_plan_{common['id']}"
    return Plan(interval=interval, **common)


def _str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise CatalogError(f"{where}: '{key}' must be a string")
    return value


def _int(entry: dict[str, Any], key: str, where: str, *, minimum: int, default: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_COINS:
        raise CatalogError(f"{where}: '{key}' must be an integer from {minimum} to {MAX_COINS}")
    return value


def _unique(values: list[str], what: str, source: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise CatalogError(f"{source}: duplicate {what} {value!r}")
        seen.add(value)


def _payment_methods(value: Any, source: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise CatalogError(f"{source}: [payment_methods] must be a table of currency = [types]")
    result: dict[str, list[str]] = {}
    for code, types in value.items():
        try:
            currency = money.normalize(code)
        except money.CurrencyError as exc:
            raise CatalogError(f"{source}: payment_methods: {exc}") from None
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise CatalogError(f"{source}: payment_methods.{code} must be a list of payment method types")
        for type_ in types:
            reason = retired_reason(type_)
            if reason:
                raise CatalogError(f"{source}: payment_methods.{code}: {reason}")
        result[currency] = list(dict.fromkeys(t.strip().lower() for t in types))
    return result


# -- Stripe ---------------------------------------------------------------------------------------
@dataclass
class SyncResult:
    """What ``sync_to_stripe`` did, per pack and currency: lookup key → price id, and the objects it created."""

    prices: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)


async def sync_to_stripe(client: stripe.StripeClient, catalog: Catalog) -> SyncResult:
    """Create or update one Product per pack and, for each currency the pack is sold in, make that
    currency's lookup key (``Pack.lookup_key_in``) point at a Price with the catalog's amount in it. Safe to
    run any number of times, from several processes at once: products have our own ids, prices are found
    by lookup key, every create has a deterministic idempotency key."""
    result = SyncResult()
    for pack in catalog.packs.values():
        for currency in pack.currencies:
            result.prices[pack.lookup_key_in(currency)] = await sync_pack(client, pack, result, currency=currency)
    return result


async def sync_pack(client: stripe.StripeClient, pack: Pack, result: SyncResult | None = None, *,
                    currency: str | None = None) -> str:
    """Ensure the pack's Product and its Price in ``currency`` (default: the primary one) exist in Stripe;
    returns the price id. One Price per currency, each found by its own lookup key: a Checkout Session
    has one currency, and its line item's Price must be in it."""
    code = currency or pack.currency
    amount = pack.amount_in(code)
    if amount is None:
        raise ValueError(f"the {pack.id} pack has no price in {code.upper()}")
    lookup_key = pack.lookup_key_in(code)
    await _ensure_product(client, pack, result)
    price = await _current_price(client, lookup_key)
    if price is not None and _matches(price, pack, amount, code):
        return str(price["id"])
    async with stripe_call("creating a price"):
        created = (await client.v1.prices.create_async(params={
            "product": pack.product_id, "unit_amount": amount, "currency": code,
            "lookup_key": lookup_key, "transfer_lookup_key": True,
            "metadata": {"tally_pack_id": pack.id, "coins": str(pack.coins), "bonus": str(pack.bonus)},
        }, options={"idempotency_key": idempotency_key("pack", pack.id, f"price:{code}:{amount}")}
        )).to_dict()
        if created.get("lookup_key") != lookup_key:
            # An idempotent replay returned an older price that has since lost the key: move it back.
            moved = {"lookup_key": lookup_key, "transfer_lookup_key": True}
            await client.v1.prices.update_async(created["id"], params=moved,
                                                options={"idempotency_key": update_key("price", created["id"], moved)})
        if price is not None and price.get("active"):
            # The superseded price stays in Stripe (old sessions refer to it) but is no longer offered.
            retired = {"active": False}
            await client.v1.prices.update_async(price["id"], params=retired,
                                                options={"idempotency_key": update_key("price", price["id"], retired)})
    if result is not None:
        result.created.append(str(created["id"]))
    return str(created["id"])


def _matches(price: dict[str, Any], pack: Pack, amount: int, currency: str) -> bool:
    product = price.get("product")
    product_id = product if isinstance(product, str) else (product or {}).get("id")
    return (price.get("unit_amount") == amount and price.get("currency") == currency
            and product_id == pack.product_id and bool(price.get("active")) and price.get("type") == "one_time")


async def _current_price(client: stripe.StripeClient, lookup_key: str) -> dict[str, Any] | None:
    async with stripe_call("looking up a price"):
        found = await client.v1.prices.list_async(params={"lookup_keys": [lookup_key], "limit": 1})
    return found.data[0].to_dict() if found.data else None


async def _ensure_product(client: stripe.StripeClient, pack: Pack, result: SyncResult | None) -> None:
    async with stripe_call("syncing a product"):
        try:
            product = (await client.v1.products.retrieve_async(pack.product_id)).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            await client.v1.products.create_async(params={
                "id": pack.product_id, "name": pack.name, "metadata": {"tally_pack_id": pack.id},
                **({"description": pack.description} if pack.description else {}),
            }, options={"idempotency_key": idempotency_key("pack", pack.id, "product")})
            if result is not None:
                result.created.append(pack.product_id)
            return
        if product.get("name") != pack.name or not product.get("active"):
            fixed = {"name": pack.name, "active": True}
            await client.v1.products.update_async(pack.product_id, params=fixed, options={
                "idempotency_key": update_key("product", pack.product_id, fixed)})


class PriceBook:
    """(Pack, currency) → Stripe price id for checkout, cached per process. A miss (first use, a catalog
    edit, a price archived in the dashboard) looks the lookup key up again and syncs that one price, so
    checkout works even when ``tally catalog sync`` was never run."""

    def __init__(self) -> None:
        self._prices: dict[tuple[str, int, str], str] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def _key(pack: Pack, currency: str | None) -> tuple[str, int, str]:
        code = currency or pack.currency
        amount = pack.amount_in(code)
        if amount is None:
            raise ValueError(f"the {pack.id} pack has no price in {code.upper()}")
        return pack.lookup_key_in(code), amount, code

    async def price_id(self, client: stripe.StripeClient, pack: Pack, currency: str | None = None) -> str:
        key = self._key(pack, currency)
        cached = self._prices.get(key)
        if cached is not None:
            return cached
        async with self._lock:
            if key not in self._prices:
                self._prices[key] = await sync_pack(client, pack, currency=key[2])
            return self._prices[key]

    def remember(self, pack: Pack, price_id: str, currency: str | None = None) -> None:
        self._prices[self._key(pack, currency)] = price_id

    def forget(self, pack: Pack, currency: str | None = None) -> None:
        self._prices.pop(self._key(pack, currency), None)


@dataclass(frozen=True)
class PriceMatch:
    """What a client's price reference (a Stripe price id or a lookup key) names in the catalog."""

    pack: Pack | None = None
    plan: Plan | None = None


async def match_price_reference(client: stripe.StripeClient, catalog: Catalog, prices: PriceBook,
                                reference: str) -> PriceMatch:
    """The catalog pack or plan behind ``reference``: a pack/plan id, a lookup key, or the Stripe price id
    that a lookup key currently points at. Anything else (an archived price, another product's price, a
    price made in the dashboard) matches nothing: a client may name a price, never invent one."""
    pack = catalog.pack_by_reference(reference)
    if pack is not None:
        return PriceMatch(pack=pack)
    plan = catalog.plan_by_reference(reference)
    if plan is not None:
        return PriceMatch(plan=plan)
    if not reference.startswith("price_"):
        return PriceMatch()
    for candidate in catalog.packs.values():
        if await prices.price_id(client, candidate) == reference:
            return PriceMatch(pack=candidate)
    # Plans are synced by the subscriptions work; recognise their prices by lookup key meanwhile.
    async with stripe_call("looking up a price"):
        try:
            price = (await client.v1.prices.retrieve_async(reference)).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return PriceMatch()
            raise
    lookup_key = price.get("lookup_key")
    plan = catalog.plan_by_reference(lookup_key) if isinstance(lookup_key, str) else None
    return PriceMatch(plan=plan) if plan is not None and price.get("active") else PriceMatch()
