"""The plans file and the upgrade credit rule."""

from __future__ import annotations

import pytest

from tally.config import Settings
from tally.subscriptions.plans import PlanError, parse_lookup_key, parse_plans, plan_book, upgrade_credits


def test_default_plans_load() -> None:
    book = plan_book(Settings())
    assert book.get("basic") and book.get("pro")
    assert book.by_lookup_key("plan:pro:year")[1].credits == 48000  # type: ignore[index]


def test_upgrade_credits_rounds_down_and_never_negative() -> None:
    assert upgrade_credits(1000, 4000, 15, 30) == 1500
    assert upgrade_credits(1000, 4000, 1, 7) == 428  # 428.57… rounded down
    assert upgrade_credits(4000, 1000, 15, 30) == 0
    assert upgrade_credits(1000, 4000, 0, 30) == 0


def test_lookup_keys() -> None:
    assert parse_lookup_key("plan:basic:month") == ("basic", "month")
    assert parse_lookup_key("plan:basic:week") is None and parse_lookup_key("tally_pack_x") is None


@pytest.mark.parametrize("text, message", [
    ('[[plans]]\nid = "a"\nname = "A"\ncurrency = "usd"\n', "needs a 'month' or a 'year'"),
    ('[[plans]]\nid = "a"\nname = "A"\ncurrency = "usd"\nmonth = { amount = 0, credits = 1 }\n', "positive"),
    ('[[plans]]\nid = "a"\nname = "A"\ncurrency = "usd"\nmonth = { amount = 1, credits = 1 }\nextra = 1\n',
     r"plans\[0\] \(a\)\.extra: unknown field"),
    ('[[plans]]\nid = "a"\nname = "A"\ncurrency = "usd"\nyear = { amount = 1, credits = -1 }\n',
     r"plans\[0\] \(a\)\.year\.credits: Input should be greater than or equal to 0"),
    ('[[plans]]\nid = "a"\nname = "A"\ncurrency = "usd"\nmonth = { amount = 1 }\n[[plans]]\nid = "a"\nname = "B"\n'
     'currency = "usd"\nmonth = { amount = 2 }\n', "duplicate plan id 'a'"),
])
def test_bad_plans_are_refused(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plans(text)
