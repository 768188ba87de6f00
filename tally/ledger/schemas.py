"""Request and response shapes of the credits API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

MAX_SPEND = 10**12


class SpendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(gt=0, le=MAX_SPEND, description="Coins to debit")
    reason: str = Field(min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                                 description="Retry with the same key: the spend happens once")


class SpendOut(BaseModel):
    transaction_id: int
    amount: int  # coins debited
    balance: int  # balance right after this spend
    available: int  # what the wallet can still spend
    replayed: bool  # True when this key had already been used with the same amount and reason


class GrantOut(BaseModel):
    id: int
    category: str  # paid | promotional
    source: str  # purchase | subscription | proration | promotion | adjustment | reinstatement | rollover
    remaining: int
    expires_at: datetime | None


class ExpiringOut(BaseModel):
    amount: int
    expires_at: datetime


class BalanceOut(BaseModel):
    balance: int  # credits owned, held ones included; negative only after a refund or dispute took spent ones
    available: int  # what a spend or a hold may take now
    held: int
    grants: list[GrantOut]  # the unexpired grants holding credits, in the order debits draw from them
    expiring_soon: list[ExpiringOut]  # within 30 days, soonest first


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(gt=0, le=MAX_SPEND, description="Credits to reserve")
    idempotency_key: str = Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                                 description="Retry with the same key: the hold is made once")
    reason: str | None = Field(None, min_length=1, max_length=200)
    expires_in_seconds: StrictInt | None = Field(None, ge=1, le=7 * 24 * 3600,
                                                 description="Released by the worker when not captured by then "
                                                             "(default 900)")


class CaptureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(None, gt=0, le=MAX_SPEND,
                                     description="Credits to spend, at most the held amount (default: all)")


class HoldOut(BaseModel):
    id: str
    object: str = "credit_hold"
    amount: int
    status: str  # held | captured | released | expired
    captured: int
    released: int
    reason: str | None
    created_at: datetime
    expires_at: datetime
    available: int  # what the wallet can spend after this answer
    balance: int | None = None  # on a capture: the balance right after it


class TransactionOut(BaseModel):
    id: int
    kind: str  # see tally.ledger.references.Kind
    reference: str
    description: str | None
    order_id: str | None
    amount: int  # net change of the wallet
    balance_after: int | None
    entries: list[dict[str, Any]]
    created_at: datetime


class TransactionList(BaseModel):
    object: str = "list"
    data: list[TransactionOut]
    has_more: bool
    next_cursor: str | None
