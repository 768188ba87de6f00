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
    replayed: bool  # True when this key had already been used with the same amount and reason


class BalanceOut(BaseModel):
    balance: int


class TransactionOut(BaseModel):
    id: int
    kind: str  # purchase | spend | refund
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
