"""Stripe's minor-unit rules per currency: every amount in Tally is an integer in the currency's smallest
unit, as Stripe counts it. Stripe differs from ISO 4217 for a few currencies (ISK is two-decimal in the
API; UGX is zero-decimal), so Tally keeps its own table instead of asking Babel. Babel is for display only.

Source: docs.stripe.com/currencies ("Zero-decimal", "Three-decimal", "Special cases")."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ZERO_DECIMAL = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
})
# Three-decimal currencies: amounts must end in 0 (the card networks settle to two decimals).
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Two-decimal in the API but charged in whole units only: amounts must be divisible by 100.
WHOLE_UNITS_ONLY = frozenset({"isk"})


class CurrencyError(ValueError):
    pass


def normalize(currency: str) -> str:
    """Lower-case three-letter code, as Stripe wants it."""
    code = currency.strip().lower()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise CurrencyError(f"{currency!r} is not a three-letter ISO 4217 currency code")
    return code


def exponent(currency: str) -> int:
    """Digits after the decimal point in Stripe's minor unit: JPY 0, USD 2, KWD 3."""
    code = normalize(currency)
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def granularity(currency: str) -> int:
    """The smallest chargeable step in minor units (1 for most; 10 for three-decimal; 100 for ISK)."""
    code = normalize(currency)
    if code in THREE_DECIMAL:
        return 10
    if code in WHOLE_UNITS_ONLY:
        return 100
    return 1


def check_amount(amount: int, currency: str) -> None:
    """Raise ``CurrencyError`` unless ``amount`` is a positive integer Stripe can charge in ``currency``."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise CurrencyError("amounts are integers in the currency's minor unit")
    if amount <= 0:
        raise CurrencyError("amounts must be positive")
    step = granularity(currency)
    if amount % step:
        raise CurrencyError(f"{normalize(currency).upper()} amounts must be divisible by {step} (minor units)")


def to_minor(value: str | Decimal | int, currency: str) -> int:
    """A major-unit amount ("4.99", Decimal("500")) in minor units; refuses more precision than the
    currency has, rather than rounding money silently."""
    try:
        major = Decimal(str(value))
    except InvalidOperation:
        raise CurrencyError(f"{value!r} is not a number") from None
    if not major.is_finite():  # Decimal parses "NaN" and "Infinity"; neither is an amount
        raise CurrencyError(f"{value!r} is not a finite number")
    minor = major.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise CurrencyError(f"{value} has more decimals than {normalize(currency).upper()} allows")
    return int(minor)


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units back to a Decimal in major units (JPY 500 → 500, USD 499 → 4.99)."""
    exp = exponent(currency)
    return (Decimal(amount).scaleb(-exp)).quantize(Decimal(1).scaleb(-exp), rounding=ROUND_HALF_UP)


def format_amount(amount: int, currency: str) -> str:
    """A plain, locale-free rendering for logs and invoices: ``4.99 USD``, ``500 JPY``."""
    return f"{to_major(amount, currency)} {normalize(currency).upper()}"
