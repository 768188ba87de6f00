"""Request and response shapes of the compatibility routes, spelled exactly as the frontends written
against the common Stripe guides send and read them (snake_case for ``/api/payment``, camelCase for
``/api/stripe`` and ``/api/business``).

Unlike ``/v1``, these bodies ignore unknown fields: a drop-in backend must accept what existing frontends
already send. Nothing a client sends ever sets a price: ``price_usd``/``coins``/``bonus`` must describe a
catalog pack exactly, and ``priceId``/``planId`` must name one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from ..orders.schemas import WebUrl

UserId = Field(None, min_length=1, max_length=255, description="With the API key: the user to act for")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- /api/payment ----------------------------------------------------------------------------------
class PaymentCheckoutIn(_Lenient):
    price_usd: Decimal = Field(gt=0, max_digits=12, description="Must equal a catalog pack's USD price")
    coins: int = Field(ge=1, le=10**12)
    bonus: int = Field(0, ge=0, le=10**12)
    success_url: WebUrl | None = Field(None, description="May contain {CHECKOUT_SESSION_ID}")
    cancel_url: WebUrl | None = None
    user_id: str | None = UserId


class PaymentCheckoutOut(BaseModel):
    session_id: str
    checkout_url: str


class PaymentStatusOut(BaseModel):
    status: Literal["pending", "completed", "failed", "expired"]
    session_id: str
    coins_added: int | None  # null until completed
    new_balance: int | None


# -- /api/stripe and /api/business ---------------------------------------------------------------------
class StripeCheckoutIn(_Lenient):
    priceId: str = Field(min_length=1, max_length=255, description="A Stripe price id or a catalog lookup key")
    userId: str | None = UserId
    userEmail: EmailStr | None = None
    successUrl: WebUrl | None = Field(None, description="May contain {CHECKOUT_SESSION_ID}")
    cancelUrl: WebUrl | None = None


class StripeCheckoutData(BaseModel):
    sessionId: str
    url: str


class StripeCheckoutOut(BaseModel):
    success: Literal[True] = True
    data: StripeCheckoutData


class CreditOrderIn(_Lenient):
    planId: str = Field(min_length=1, max_length=200, description="A pack id or lookup key")
    currency: str | None = Field(None, min_length=3, max_length=3)
    userId: str | None = UserId


class CreditOrderOut(BaseModel):
    id: str
    orderId: str
    planId: str
    status: str  # pending
    amount: int  # minor units of currency, from the catalog
    currency: str
    coins: int
    bonus: int


class CreatePaymentIntentIn(_Lenient):
    orderId: str = Field(min_length=1, max_length=255)
    paymentMethodTypes: list[str] | None = Field(None, min_length=1, max_length=20)
    userId: str | None = UserId


class CreatePaymentIntentOut(BaseModel):
    clientSecret: str | None
    paymentIntentId: str | None
    paymentMethodTypes: list[str]


class ConfirmPaymentIn(_Lenient):
    paymentIntentId: str = Field(min_length=1, max_length=255)
    paymentMethodId: str | None = Field(None, min_length=1, max_length=255)
    paymentMethodType: str | None = Field(None, min_length=1, max_length=64)
    returnUrl: WebUrl | None = None
    userId: str | None = UserId


class NextAction(BaseModel):
    type: str
    redirectUrl: str | None


class ConfirmPaymentOut(BaseModel):
    status: str  # succeeded | requires_action | processing | requires_payment_method
    nextAction: NextAction | None = None  # left out when there is nothing to do


class FamilyErrorDetail(BaseModel):
    message: str


class FamilyError(BaseModel):
    """How ``/api/stripe`` and ``/api/business`` report errors."""

    success: Literal[False] = False
    error: FamilyErrorDetail
