"""What the pricing page shows of the subscription plans: one interval at a time (monthly or annual, with a
switch), each plan's price, credits per period and features, and which plan the user is on. Pure functions
over ``PlanBook``; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from ..subscriptions.plans import PLAN_INTERVALS, PlanBook, SubscriptionPlan
from .pricing import display_price

INTERVAL_WORDS = {"month": ("Monthly", "month"), "year": ("Annual", "year")}


ACRONYMS = {"api": "API", "sso": "SSO", "sla": "SLA", "ai": "AI"}


def feature_label(feature: str) -> str:
    """``priority_queue`` → ``Priority queue``, ``api_access`` → ``API access``: features are identifiers."""
    words = [ACRONYMS.get(w.lower(), w) for w in feature.replace("-", "_").split("_") if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class PlanCard:
    plan: SubscriptionPlan
    interval: str
    price: str  # "$90" for the interval
    per: str  # "month" / "year"
    monthly_equivalent: str | None  # annual prices only: "$7.50 a month"
    saving_percent: int | None  # annual vs twelve monthly payments, when there is both
    credits: int
    features: list[str]
    current: bool  # the user's plan and interval (an active or trialing subscription)

    @property
    def id(self) -> str:
        return self.plan.id


@dataclass(frozen=True)
class PlansView:
    interval: str
    intervals: list[str]  # more than one: the page shows the monthly/annual switch
    cards: list[PlanCard]


def plans_view(book: PlanBook, interval: str | None = None, *, current_plan: str | None = None,
               current_interval: str | None = None) -> PlansView | None:
    """The plans priced in one interval (the asked one when some plan has it, else the first offered), by
    rank; None when the catalog has no plans."""
    plans = sorted(book.plans.values(), key=lambda p: p.rank)
    if not plans:
        return None
    intervals = [i for i in PLAN_INTERVALS if any(p.price(i) for p in plans)]
    chosen = interval if interval in intervals else intervals[0]
    cards = []
    for plan in plans:
        price = plan.price(chosen)
        if price is None:
            continue
        monthly = plan.price("month")
        equivalent = saving = None
        if chosen == "year":
            # Shown to the cent, rounded down: the display never promises less than the user pays.
            equivalent = f"{display_price(price.amount // 12, plan.currency)} a month"
            if monthly is not None and monthly.amount > 0 and price.amount < 12 * monthly.amount:
                saving = (12 * monthly.amount - price.amount) * 100 // (12 * monthly.amount)
        cards.append(PlanCard(
            plan=plan, interval=chosen, price=display_price(price.amount, plan.currency),
            per=INTERVAL_WORDS[chosen][1], monthly_equivalent=equivalent, saving_percent=saving or None,
            credits=price.credits, features=[feature_label(f) for f in plan.features],
            current=plan.id == current_plan and chosen == current_interval))
    return PlansView(chosen, intervals, cards)
