"""What the pricing page shows of the plans: interval switch, annual saving, current plan, feature labels."""

from __future__ import annotations

from tally.pages.plans import feature_label, plans_view
from tally.subscriptions.plans import parse_plans

PLANS = '''
[[plans]]
id = "solo"
name = "Solo"
rank = 1
currency = "eur"
month = { amount = 999, credits = 100 }
year = { amount = 9990, credits = 1200 }
features = ["api_access", "priority-queue"]

[[plans]]
id = "team"
name = "Team"
rank = 2
currency = "eur"
year = { amount = 50000, credits = 9000 }
'''


def test_monthly_view_lists_only_plans_with_a_monthly_price() -> None:
    view = plans_view(parse_plans(PLANS))
    assert view is not None and view.interval == "month" and view.intervals == ["month", "year"]
    assert [(c.id, c.price, c.credits, c.monthly_equivalent) for c in view.cards] == [("solo", "€9.99", 100, None)]
    assert view.cards[0].features == ["API access", "Priority queue"]


def test_annual_view_shows_the_monthly_equivalent_and_the_saving() -> None:
    view = plans_view(parse_plans(PLANS), "year", current_plan="team", current_interval="year")
    assert view is not None
    solo, team = view.cards
    # 9990 / 12 = 832.5 → €8.32 (rounded down); 12 × 999 = 11988, saving 1998 → 16 % (rounded down).
    assert (solo.price, solo.monthly_equivalent, solo.saving_percent, solo.current) == ("€99.90", "€8.32 a month",
                                                                                        16, False)
    assert (team.saving_percent, team.current) == (None, True)  # no monthly price to compare with


def test_unknown_interval_falls_back_and_no_plans_is_none() -> None:
    view = plans_view(parse_plans(PLANS), "week")
    assert view is not None and view.interval == "month"
    assert plans_view(parse_plans("")) is None
    assert feature_label("sso") == "SSO" and feature_label("credits") == "Credits"
