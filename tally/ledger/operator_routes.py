"""``POST /v1/admin/credits/grants`` and ``POST /v1/admin/credits/adjustments``: the operator gives or takes
credits, with a reason the user sees. API key or an admin JWT, as every ``/v1/admin`` route."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..deps import AdminUser, SessionDep
from . import operator
from .operator_schemas import AdjustmentIn, GrantIn, OperatorMovementOut

router = APIRouter(prefix="/v1/admin/credits", tags=["admin"])

_ANSWERS: dict[int | str, dict[str, str]] = {
    200: {"description": "a replay of the idempotency_key: the first movement, with replayed: true"},
    409: {"description": "insufficient_credits (an adjustment down beyond what the user can spend), or the "
                         "idempotency_key already made a different movement"},
}


def _out(moved: operator.OperatorMovement, response: Response) -> OperatorMovementOut:
    if moved.replayed:
        response.status_code = 200
    return OperatorMovementOut(transaction_id=moved.transaction_id, user_id=moved.user_id, amount=moved.amount,
                               category=moved.category, expires_at=moved.expires_at, reason=moved.reason,
                               idempotency_key=moved.key, balance=moved.balance, available=moved.available,
                               replayed=moved.replayed)


@router.post("/grants", response_model=OperatorMovementOut, status_code=201, responses=_ANSWERS,
             summary="Give a user credits")
async def create_grant(body: GrantIn, admin: AdminUser, session: SessionDep,
                       response: Response) -> OperatorMovementOut:
    """Paid or promotional credits, expiring at ``expires_at`` or never. Once per ``idempotency_key`` (a replay
    answers 200 with the first grant)."""
    moved = await operator.grant(session, user_id=body.user_id, amount=body.amount, category=body.category,
                                 reason=body.reason, key=body.idempotency_key, expires_at=body.expires_at)
    return _out(moved, response)


@router.post("/adjustments", response_model=OperatorMovementOut, status_code=201, responses=_ANSWERS,
             summary="Correct a user's credits up or down")
async def create_adjustment(body: AdjustmentIn, admin: AdminUser, session: SessionDep,
                            response: Response) -> OperatorMovementOut:
    """``amount > 0`` adds paid credits that never expire; ``amount < 0`` takes credits in the normal draw order,
    never more than the user can spend. Once per ``idempotency_key``."""
    moved = await operator.adjust(session, user_id=body.user_id, delta=body.amount, reason=body.reason,
                                  key=body.idempotency_key)
    return _out(moved, response)
