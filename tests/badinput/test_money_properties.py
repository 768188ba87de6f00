"""Property tests for ``tally.currency``: minor units per Stripe's rules, exact conversions both ways,
no silent rounding, one rendering per amount, and clean ``CurrencyError``s for anything else."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tally import currency

PROPERTIES = settings(max_examples=300, derandomize=True, database=None, deadline=None)

# The special currencies and a sample of ordinary two-decimal ones.
CODES = sorted(currency.ZERO_DECIMAL | currency.THREE_DECIMAL | currency.WHOLE_UNITS_ONLY
               | {"usd", "eur", "gbp", "chf", "huf", "twd", "inr", "brl", "mxn", "aud"})
codes = st.sampled_from(CODES)
# As callers write them: any case, maybe padded.
spelled = st.tuples(codes, st.sampled_from([str.lower, str.upper, str.title]),
                    st.sampled_from(["", " ", "\t"])).map(lambda t: t[2] + t[1](t[0]) + t[2])
amounts = st.integers(min_value=-(10**15), max_value=10**15)


@PROPERTIES
@given(spelled)
def test_normalize_ignores_case_and_padding(code: str) -> None:
    assert currency.normalize(code) == code.strip().lower()
    assert currency.exponent(code) == currency.exponent(code.strip().lower())


@PROPERTIES
@given(st.text(max_size=6))
@example('us')
@example('usdd')
@example('u$d')
@example('')
@example('ÜSD')
@example('ＵＳＤ')
@example('１２３')
@example('ǅsd')
def test_normalize_accepts_only_three_ascii_letters(text: str) -> None:
    if re.fullmatch(r"[A-Za-z]{3}", text.strip()):
        assert currency.normalize(text) == text.strip().lower()
    else:
        with pytest.raises(currency.CurrencyError):
            currency.normalize(text)


@PROPERTIES
@given(codes)
def test_exponent_and_step_follow_stripe(code: str) -> None:
    exp, step = currency.exponent(code), currency.granularity(code)
    if code in currency.ZERO_DECIMAL:
        assert (exp, step) == (0, 1)
    elif code in currency.THREE_DECIMAL:
        assert (exp, step) == (3, 10)  # settles to two decimals: the last digit must be 0
    elif code in currency.WHOLE_UNITS_ONLY:
        assert (exp, step) == (2, 100)
    else:
        assert (exp, step) == (2, 1)


@PROPERTIES
@given(amounts, codes)
def test_minor_to_major_and_back_is_exact(amount: int, code: str) -> None:
    major = currency.to_major(amount, code)
    assert -int(major.as_tuple().exponent) == currency.exponent(code)
    assert major * 10 ** currency.exponent(code) == amount
    assert currency.to_minor(major, code) == amount
    assert currency.to_minor(str(major), code) == amount


@PROPERTIES
@given(amounts, codes)
def test_format_has_exactly_the_currency_decimals(amount: int, code: str) -> None:
    text = currency.format_amount(amount, code)
    exp = currency.exponent(code)
    decimals = rf"\.\d{{{exp}}}" if exp else ""
    assert re.fullmatch(rf"-?\d+{decimals} {code.upper()}", text), text
    number, shown_code = text.split(" ")
    assert shown_code == code.upper()
    assert currency.to_minor(number, code) == amount  # the text means exactly the amount


@PROPERTIES
@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=9), codes)
def test_more_precision_than_the_currency_is_refused_not_rounded(minor: int, extra_digit: int,
                                                                  code: str) -> None:
    # One digit beyond the currency's last decimal place (never zero): rounding it would change the amount.
    exp = currency.exponent(code)
    value = Decimal(minor).scaleb(-exp) + Decimal(extra_digit).scaleb(-exp - 1)
    with pytest.raises(currency.CurrencyError):
        currency.to_minor(value, code)
    with pytest.raises(currency.CurrencyError):
        currency.to_minor(str(value), code)


@PROPERTIES
@given(st.one_of(st.integers(min_value=-(10**13), max_value=10**13), st.booleans(),
                 st.floats(allow_nan=True, allow_infinity=True), st.decimals(allow_nan=True), st.none(),
                 st.text(max_size=5)), codes)
def test_check_amount_accepts_exactly_positive_integers_on_the_step(amount: object, code: str) -> None:
    ok = (type(amount) is int and amount > 0 and amount % currency.granularity(code) == 0)
    if ok:
        currency.check_amount(amount, code)  # type: ignore[arg-type]
    else:
        with pytest.raises(currency.CurrencyError):
            currency.check_amount(amount, code)  # type: ignore[arg-type]


@PROPERTIES
@given(st.one_of(st.text(max_size=12), st.sampled_from(["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf",
                                                       "1e30", "1_000", " 4.99 ", "4,99", "0x10", "٣"])),
       codes)
def test_to_minor_parses_or_refuses_cleanly(text: str, code: str) -> None:
    """Whatever the text, the answer is an exact integer or a ``CurrencyError``: no other exception, and no
    integer that is not what the text says."""
    try:
        minor = currency.to_minor(text, code)
    except currency.CurrencyError:
        return
    assert isinstance(minor, int)
    assert Decimal(text) == Decimal(minor).scaleb(-currency.exponent(code))
