"""Request and response shapes of the operator's credit routes (``/v1/admin/credits/…``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from .schemas import MAX_SPEND

UserId = Field(min_length=1, max_length=255, description="The app's id of the user")
Reason = Field(min_length=1, max_length=200, description="Shown to the user in their transactions")
Key = Field(None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
            description="Retry with the same key: the movement happens once (default: a fresh key, so a retry "
                        "without one is a new movement)")


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = UserId
    amount: StrictInt = Field(gt=0, le=MAX_SPEND, description="Credits to give")
    category: Literal["paid", "promotional"]
    expires_at: AwareDatetime | None = Field(None, description="When what is left of them lapses (default: never)")
    reason: str = Reason
    idempotency_key: str | None = Key


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = UserId
    amount: StrictInt = Field(ge=-MAX_SPEND, le=MAX_SPEND,
                              description="Credits to add (> 0: a paid grant that never expires) or take (< 0: "
                                          "at most what the user can spend)")
    reason: str = Reason
    idempotency_key: str | None = Key


class OperatorMovementOut(BaseModel):
    object: str = "credit_movement"
    transaction_id: int
    user_id: str
    amount: int  # the wallet's change: + given, − taken
    category: str | None  # of the grant made (paid | promotional); null for an adjustment down
    expires_at: datetime | None
    reason: str
    idempotency_key: str
    balance: int  # the user's balance now
    available: int  # what the user can spend now
    replayed: bool  # True when this key had already made this movement
