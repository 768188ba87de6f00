from decimal import Decimal

import pytest

from tally import currency


@pytest.mark.parametrize(("code", "exp"), [("usd", 2), ("JPY", 0), ("krw", 0), ("ugx", 0), ("kwd", 3),
                                           ("isk", 2), ("huf", 2), ("eur", 2)])
def test_exponents_follow_stripe(code: str, exp: int) -> None:
    assert currency.exponent(code) == exp


def test_conversions_are_exact() -> None:
    assert currency.to_minor("4.99", "usd") == 499
    assert currency.to_minor("500", "jpy") == 500
    assert currency.to_minor("1.234", "kwd") == 1234
    assert currency.to_major(499, "usd") == Decimal("4.99")
    assert currency.to_major(500, "jpy") == Decimal("500")
    assert currency.format_amount(9999, "usd") == "99.99 USD"
    assert currency.format_amount(500, "jpy") == "500 JPY"
    with pytest.raises(currency.CurrencyError):
        currency.to_minor("4.999", "usd")  # never rounds money silently
    with pytest.raises(currency.CurrencyError):
        currency.to_minor("1.5", "jpy")


def test_chargeable_amounts() -> None:
    currency.check_amount(499, "usd")
    currency.check_amount(1, "jpy")
    currency.check_amount(1230, "kwd")
    currency.check_amount(50000, "isk")
    for amount, code in [(0, "usd"), (-1, "usd"), (1.5, "usd"), (True, "usd"), (1234, "kwd"), (50050, "isk")]:
        with pytest.raises(currency.CurrencyError):
            currency.check_amount(amount, code)  # type: ignore[arg-type]
    for bad in ("us", "usdd", "u$d", ""):
        with pytest.raises(currency.CurrencyError):
            currency.normalize(bad)
