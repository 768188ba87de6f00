"""The catalog: credit packs read from a TOML file, validated strictly (pydantic models: one error per wrong
field), and synced to Stripe Products/Prices found again by lookup key. Prices come only from here, never from
a client. Subscription plans have a file of their own (``tally.subscriptions.plans``)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from .. import currency as money
from ..stripe_gateway import (StripeGateway, ensure_product, idempotency_key, stripe_call, update_key)
from .payment_methods import methods_for, retired_reason
from .toml_file import FileModel, currency_code, parse_toml, read_toml

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_COINS = 10**12  # far above any sane pack; keeps ledger sums well inside BIGINT
MAX_CREDIT_DAYS = 36500  # a hundred years: "never" is written by leaving the field out

EntryId = Annotated[str, StringConstraints(pattern=ID_PATTERN.pattern)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Coins = Annotated[int, Field(ge=0, le=MAX_COINS)]


class CatalogError(ValueError):
    """The catalog file is unreadable or breaks a rule; the message names each offending entry and key."""


class Pack(FileModel):
    """A ``[[packs]]`` entry of the catalog file, as the rest of Tally uses it."""

    id: EntryId
    name: Name
    currency: str  # lower-case ISO code (before ``amount``: the amount is checked against it)
    amount: int  # minor units of `currency`
    coins: Annotated[int, Field(ge=1, le=MAX_COINS)]
    bonus: Coins = 0
    lookup_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # default tally_pack_<id>
    description: str | None = None
    # The pack's price in other currencies (minor units): Checkout and PaymentIntent orders sell it in any of
    # them, one currency per order. ``amount``/``currency`` stay the primary price, the default everywhere.
    prices: dict[str, int] = {}
    # The pack's credits (and bonus) expire this many days after payment; None: never.
    expires_after_days: Annotated[int, Field(ge=1, le=MAX_CREDIT_DAYS)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_lookup_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "lookup_key" not in data and isinstance(data.get("id"), str):
            return {**data, "lookup_key": f"tally_pack_{data['id']}"}
        return data

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return currency_code(value)

    @field_validator("amount")
    @classmethod
    def _amount(cls, amount: int, info: ValidationInfo) -> int:
        if "currency" in info.data:
            money.check_amount(amount, info.data["currency"])
        return amount

    @field_validator("prices")
    @classmethod
    def _other_prices(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        """``prices = { eur = 459, myr = 2290 }``: the pack in other currencies, minor units each."""
        primary = info.data.get("currency")
        prices: dict[str, int] = {}
        for code, amount in value.items():
            currency = money.normalize(code)
            money.check_amount(amount, currency)
            if currency == primary and amount != info.data.get("amount"):
                raise ValueError(f"prices.{code} contradicts the pack's amount")
            if currency != primary:
                prices[currency] = amount
        return prices

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


class CatalogFile(FileModel):
    """The catalog file: ``[[packs]]`` and ``[payment_methods]``."""

    packs: list[Pack]
    payment_methods: dict[str, list[Annotated[str, StringConstraints(min_length=1)]]] = {}
    plans: None = None  # refused with a message: see _no_plans

    @field_validator("plans", mode="before")
    @classmethod
    def _no_plans(cls, value: Any) -> None:
        raise ValueError("subscription plans live in the plans file (TALLY_PLANS), not in the catalog")

    @field_validator("packs")
    @classmethod
    def _packs(cls, packs: list[Pack]) -> list[Pack]:
        if not packs:
            raise ValueError("the catalog has no [[packs]]")
        _unique([p.id for p in packs], "pack id")
        _unique([p.lookup_key_in(c) for p in packs for c in p.currencies], "lookup_key")
        return packs

    @field_validator("payment_methods")
    @classmethod
    def _payment_methods(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for code, types in value.items():
            for type_ in types:
                reason = retired_reason(type_)
                if reason:
                    raise ValueError(f"{code}: {reason}")
            result[money.normalize(code)] = list(dict.fromkeys(t.strip().lower() for t in types))
        return result


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


@dataclass(frozen=True)
class Catalog:
    packs: dict[str, Pack]
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

    def pack_matching(self, *, amount: int, currency: str, coins: int, bonus: int) -> Pack | None:
        """The pack with exactly this primary price, coins and bonus (for clients that describe a pack
        instead of naming it; they still never choose the price)."""
        return next((p for p in self.packs.values() if (p.amount, p.currency, p.coins, p.bonus)
                     == (amount, currency, coins, bonus)), None)


# -- loading and validation ----------------------------------------------------------------------
def load_catalog(path: Path | str) -> Catalog:
    return parse_catalog(read_toml(path, "catalog", CatalogError), source=str(path))


def parse_catalog(text: str, *, source: str = "catalog") -> Catalog:
    parsed = parse_toml(text, CatalogFile, source=source, error=CatalogError)
    return Catalog(packs={p.id: p for p in parsed.packs}, payment_methods=parsed.payment_methods)


# -- Stripe ---------------------------------------------------------------------------------------
@dataclass
class SyncResult:
    """What ``sync_to_stripe`` did, per pack and currency: lookup key → price id, and the objects it created."""

    prices: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)


async def sync_to_stripe(client: StripeGateway, catalog: Catalog) -> SyncResult:
    """Create or update one Product per pack and, for each currency the pack is sold in, make that
    currency's lookup key (``Pack.lookup_key_in``) point at a Price with the catalog's amount in it. Safe to
    run any number of times, from several processes at once: products have our own ids, prices are found
    by lookup key, every create has a deterministic idempotency key."""
    result = SyncResult()
    for pack in catalog.packs.values():
        for currency in pack.currencies:
            result.prices[pack.lookup_key_in(currency)] = await sync_pack(client, pack, result, currency=currency)
    return result


async def sync_pack(client: StripeGateway, pack: Pack, result: SyncResult | None = None, *,
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
        created = await client.create_price({
            "product": pack.product_id, "unit_amount": amount, "currency": code,
            "lookup_key": lookup_key, "transfer_lookup_key": True,
            "metadata": {"tally_pack_id": pack.id, "coins": str(pack.coins), "bonus": str(pack.bonus)},
        }, idempotency_key=idempotency_key("pack", pack.id, f"price:{code}:{amount}"))
        if created.get("lookup_key") != lookup_key:
            # An idempotent replay returned an older price that has since lost the key: move it back.
            moved = {"lookup_key": lookup_key, "transfer_lookup_key": True}
            await client.update_price(created["id"], moved, idempotency_key=update_key("price", created["id"], moved))
        if price is not None and price.get("active"):
            # The superseded price stays in Stripe (old sessions refer to it) but is no longer offered.
            retired = {"active": False}
            await client.update_price(price["id"], retired, idempotency_key=update_key("price", price["id"], retired))
    if result is not None:
        result.created.append(str(created["id"]))
    return str(created["id"])


def _matches(price: dict[str, Any], pack: Pack, amount: int, currency: str) -> bool:
    product = price.get("product")
    product_id = product if isinstance(product, str) else (product or {}).get("id")
    return (price.get("unit_amount") == amount and price.get("currency") == currency
            and product_id == pack.product_id and bool(price.get("active")) and price.get("type") == "one_time")


async def _current_price(client: StripeGateway, lookup_key: str) -> dict[str, Any] | None:
    async with stripe_call("looking up a price"):
        return await client.find_price(lookup_key)


async def _ensure_product(client: StripeGateway, pack: Pack, result: SyncResult | None) -> None:
    async with stripe_call("syncing a product"):
        created = await ensure_product(client, pack.product_id, name=pack.name, description=pack.description,
                                       metadata={"tally_pack_id": pack.id},
                                       create_key=idempotency_key("pack", pack.id, "product"))
    if created and result is not None:
        result.created.append(pack.product_id)


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

    async def price_id(self, client: StripeGateway, pack: Pack, currency: str | None = None) -> str:
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


async def match_price_reference(client: StripeGateway, catalog: Catalog, prices: PriceBook,
                                reference: str) -> Pack | None:
    """The catalog pack behind ``reference``: a pack id, a lookup key, or the Stripe price id that a lookup key
    currently points at. Anything else (an archived price, another product's price, a price made in the
    dashboard) matches nothing: a client may name a price, never invent one. Plans: ``match_plan_price``."""
    pack = catalog.pack_by_reference(reference)
    if pack is not None or not reference.startswith("price_"):
        return pack
    for candidate in catalog.packs.values():
        if await prices.price_id(client, candidate) == reference:
            return candidate
    return None
