"""Request and response shapes of the subscription routes. Times are Stripe's unix seconds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .plans import SubscriptionPlan

Interval = Literal["month", "year"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriptionCheckoutIn(_In):
    plan_id: str = Field(max_length=64)
    interval: Interval = "month"
    success_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    cancel_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    locale: str | None = Field(None, max_length=35, description="The buyer's language (en, zh, …); else auto")


class SubscriptionCheckoutOut(BaseModel):
    session_id: str
    checkout_url: str


class ChangeIn(_In):
    plan_id: str = Field(max_length=64)
    interval: Interval = "month"


class CancelIn(_In):
    immediately: bool = False


class PendingChangeOut(BaseModel):
    plan: str
    interval: str | None
    effective_at: int | None


class SubscriptionOut(BaseModel):
    """``status`` is Stripe's (active, trialing, past_due, unpaid, paused, canceled, incomplete,
    incomplete_expired) or ``none`` when the user never subscribed; ``entitlements`` are the plan's features
    while access is on (active, trialing, past_due) and empty otherwise."""

    id: str | None
    plan: str | None
    interval: str | None
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    trial_end: int | None
    entitlements: list[str]
    pending_change: PendingChangeOut | None


class PortalOut(BaseModel):
    url: str


class PlanPriceOut(BaseModel):
    interval: str
    amount: int
    currency: str
    credits: int
    lookup_key: str


class PlanOut(BaseModel):
    id: str
    name: str
    features: list[str]
    prices: list[PlanPriceOut]

    @classmethod
    def of(cls, plan: SubscriptionPlan) -> PlanOut:
        return cls(id=plan.id, name=plan.name, features=list(plan.features), prices=[
            PlanPriceOut(interval=i, amount=price.amount, currency=plan.currency, credits=price.credits,
                         lookup_key=plan.lookup_key(i)) for i, price in plan.prices.items()])


class PlansOut(BaseModel):
    data: list[PlanOut]
