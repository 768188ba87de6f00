"""Request and response shapes of checkout and orders. Bodies forbid unknown fields: a client that sends
an ``amount`` is told so, rather than having it silently ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..invoices.models import Invoice
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
    success_url: WebUrl | None = Field(None, description="Where Stripe sends the buyer after paying; may "
                                                         "contain {CHECKOUT_SESSION_ID}")
    cancel_url: WebUrl | None = None


class CheckoutOut(BaseModel):
    order_id: str
    session_id: str
    checkout_url: str


class OrderOut(BaseModel):
    order_id: str
    session_id: str | None
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
        return cls(order_id=order.id, session_id=order.stripe_checkout_session_id, status=order.status,
                   pack_id=order.pack_id, amount=order.amount, currency=order.currency, coins=order.coins,
                   bonus=order.bonus, coins_added=coins_added, balance=balance,
                   amount_refunded=order.amount_refunded, coins_clawed_back=order.coins_clawed_back,
                   invoice_number=invoice.number if invoice else None, failure_message=order.failure_message,
                   created_at=order.created_at, paid_at=order.paid_at)
