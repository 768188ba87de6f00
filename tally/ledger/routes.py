"""``GET /v1/credits``, ``GET /v1/credits/transactions``, ``POST /v1/credits/spend``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ..auth.deps import CurrentUser
from ..errors import InvalidRequest
from . import service
from .schemas import BalanceOut, SpendIn, SpendOut, TransactionList, TransactionOut

router = APIRouter(tags=["credits"])


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are opaque to clients; today they are the id of the last item seen."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidRequest("Invalid cursor.", param="cursor")
    return int(cursor)


Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/v1/credits", response_model=BalanceOut)
async def balance(principal: CurrentUser, request: Request) -> BalanceOut:
    async with request.app.state.db.transaction() as session:
        return BalanceOut(balance=await service.get_balance(session, principal.user_id))


@router.get("/v1/credits/transactions", response_model=TransactionList)
async def transactions(principal: CurrentUser, request: Request, limit: Limit = 20,
                       cursor: str | None = None) -> TransactionList:
    """The wallet's ledger transactions, newest first; pass ``next_cursor`` as ``cursor`` for more."""
    after = parse_cursor(cursor)
    async with request.app.state.db.transaction() as session:
        rows, has_more = await service.list_transactions(session, principal.user_id, limit=limit,
                                                         starting_after=after)
    return TransactionList(data=[TransactionOut(**row.__dict__) for row in rows], has_more=has_more,
                           next_cursor=str(rows[-1].id) if has_more else None)


@router.post("/v1/credits/spend", response_model=SpendOut,
             responses={409: {"description": "insufficient_credits, or idempotency_key reused differently"}})
async def spend(body: SpendIn, principal: CurrentUser, request: Request) -> SpendOut:
    """Debit coins atomically, once per ``idempotency_key``; never below zero."""
    # No ensure_user: a spend only moves coins of an existing wallet (a user without one has none to spend).
    movement = await service.spend(request.app.state.db, user_id=principal.user_id, amount=body.amount,
                                   reason=body.reason, idempotency_key=body.idempotency_key)
    return SpendOut(transaction_id=movement.transaction_id, amount=-movement.amount, balance=movement.balance,
                    replayed=not movement.created)
