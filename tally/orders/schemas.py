"""Request and response shapes of checkout and orders. Bodies forbid unknown fields: a client that sends
an ``amount`` is told so, rather than having it silently ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..invoices.models import Invoice
from .intents import PaymentState
from .models import Order


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


WebUrl = Annotated[str, Field(max_length=2000), AfterValidator(_web_url)]


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pack_id: str = Field(min_length=1, max_length=64, description="A pack id from GET /v1/catalog")
    currency: str | None = Field(None, min_length=3, max_length=3,
                                 description="One of the pack's currencies (GET /v1/catalog?currency=...); "
                                             "default: the pack's own. The amount is the catalog's price in it")
    success_url: WebUrl | None = Field(None, description="Where Stripe sends the buyer after paying; may "
                                                         "contain {CHECKOUT_SESSION_ID}")
    cancel_url: WebUrl | None = None
    locale: str | None = Field(None, max_length=35, description="The buyer's language for Checkout and receipts "
                                                                "(en, zh, pt-BR, …); one Stripe does not "
                                                                "support becomes auto")


class CheckoutOut(BaseModel):
    order_id: str
    session_id: str
    checkout_url: str


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pack_id: str = Field(min_length=1, max_length=200, description="A pack id (or lookup key) from GET /v1/catalog")
    currency: str | None = Field(None, min_length=3, max_length=3,
                                 description="One of the pack's currencies (GET /v1/catalog?currency=...); "
                                             "default: the pack's own")


PaymentMethodType = Annotated[str, Field(min_length=1, max_length=64)]


class PaymentIntentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_method_types: list[PaymentMethodType] | None = Field(
        None, min_length=1, max_length=20,
        description="Narrow the methods offered; each must be allowed for the order's currency "
                    "(GET /v1/payment-methods). Default: all of them.")


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_method_id: str | None = Field(None, min_length=1, max_length=255,
                                          description="A PaymentMethod made by Stripe.js (cards, bank debits)")
    payment_method_type: PaymentMethodType | None = Field(
        None, description="A redirect method confirmed by type alone: alipay, grabpay, fpx, ideal, ...")
    return_url: WebUrl | None = Field(None, description="Where the bank's or wallet's page sends the buyer back")


class NextActionOut(BaseModel):
    type: str  # redirect_to_url | use_stripe_sdk | ...
    redirect_url: str | None


class PaymentIntentOut(BaseModel):
    order_id: str
    payment_intent_id: str | None
    client_secret: str | None  # for Stripe.js in the buyer's browser; only ever sent to the order's owner
    payment_method_types: list[str]
    status: str  # the PaymentIntent's status (succeeded for a paid order)
    order_status: str

    @classmethod
    def of(cls, state: PaymentState) -> PaymentIntentOut:
        pi = state.payment_intent or {}
        return cls(order_id=state.order.id, payment_intent_id=pi.get("id"), client_secret=pi.get("client_secret"),
                   payment_method_types=state.payment_method_types, status=state.status,
                   order_status=state.order.status)


class ConfirmOut(BaseModel):
    order_id: str
    payment_intent_id: str | None
    status: str  # succeeded | requires_action | processing | requires_payment_method
    order_status: str  # pending | paid | failed
    next_action: NextActionOut | None
    failure_message: str | None

    @classmethod
    def of(cls, state: PaymentState) -> ConfirmOut:
        action = state.next_action
        return cls(order_id=state.order.id, payment_intent_id=(state.payment_intent or {}).get("id"),
                   status=state.status, order_status=state.order.status,
                   next_action=NextActionOut(**action) if action else None,
                   failure_message=state.order.failure_message if state.order.status == "failed" else None)


class OrderOut(BaseModel):
    order_id: str
    kind: str  # checkout | payment_intent
    session_id: str | None
    payment_intent_id: str | None
    status: str  # pending | paid | failed | expired | refunded
    pack_id: str
    amount: int
    currency: str
    coins: int
    bonus: int
    coins_added: int
    balance: int
    amount_refunded: int
    coins_clawed_back: int
    invoice_number: str | None
    failure_message: str | None
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, order: Order, *, coins_added: int, balance: int, invoice: Invoice | None) -> OrderOut:
        return cls(order_id=order.id, kind=order.kind, session_id=order.stripe_checkout_session_id,
                   payment_intent_id=order.stripe_payment_intent_id, status=order.status,
                   pack_id=order.pack_id, amount=order.amount, currency=order.currency, coins=order.coins,
                   bonus=order.bonus, coins_added=coins_added, balance=balance,
                   amount_refunded=order.amount_refunded, coins_clawed_back=order.coins_clawed_back,
                   invoice_number=invoice.number if invoice else None, failure_message=order.failure_message,
                   created_at=order.created_at, paid_at=order.paid_at)
