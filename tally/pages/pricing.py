"""What the pricing page shows, computed from the catalog: display prices, bonus, the best-value pack and
the currencies to switch between. Pure functions over ``Catalog``; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..catalog.service import Catalog, Pack
from ..currency import format_amount, normalize, to_major

# Symbols for display only; any other currency reads "12.00 CHF" (unambiguous, no locale data needed).
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩", "brl": "R$",
           "aud": "A$", "cad": "CA$", "nzd": "NZ$", "sgd": "S$", "hkd": "HK$", "myr": "RM"}


def display_price(amount: int, currency: str) -> str:
    """``$9.99``, ``€4.50``, ``¥500``, or ``12.00 CHF`` for currencies without a listed symbol."""
    symbol = SYMBOLS.get(normalize(currency))
    if symbol is None:
        return format_amount(amount, currency)
    major = to_major(amount, currency)
    return f"{'-' if major < 0 else ''}{symbol}{abs(major):,}"


@dataclass(frozen=True)
class PackCard:
    pack: Pack
    amount: int  # in the view's currency
    price: str
    best_value: bool

    @property
    def id(self) -> str:
        return self.pack.id


@dataclass(frozen=True)
class PricingView:
    currency: str
    currencies: list[str]  # more than one: the page shows a switch
    cards: list[PackCard]


def sellable_currencies(pack: Pack) -> list[str]:
    """Currencies Buy can sell ``pack`` in: every currency the catalog prices it in (Checkout takes any)."""
    return list(dict.fromkeys(pack.currencies))


def price_in(pack: Pack, currency: str) -> int | None:
    return pack.amount_in(currency)


def pricing_view(catalog: Catalog, currency: str | None = None) -> PricingView:
    """The packs sold in one currency (the asked one when some pack sells in it, else the first pack's),
    in catalog order, with the best coins-per-money pack marked when there are several to compare."""
    packs = list(catalog.packs.values())
    currencies = list(dict.fromkeys(c for p in packs for c in sellable_currencies(p)))
    asked = (currency or "").lower()
    chosen = asked if asked in currencies else packs[0].currency
    priced = [(p, amount) for p in packs if chosen in sellable_currencies(p)
              and (amount := price_in(p, chosen)) is not None]
    # Coins (bonus included) per minor unit, compared within one currency only. Ties share the badge;
    # a single pack is not "best" of anything.
    ratios = {p.id: Fraction(p.total_coins, amount) for p, amount in priced}
    best = max(ratios.values()) if len(priced) > 1 else None
    return PricingView(chosen, currencies, [
        PackCard(p, amount, display_price(amount, chosen), best is not None and ratios[p.id] == best)
        for p, amount in priced])
