"""``GET /v1/credits``, ``GET /v1/credits/transactions``, ``POST /v1/credits/spend`` and the holds:
``POST /v1/credits/holds``, ``GET /v1/credits/holds/{id}``, ``POST …/capture``, ``POST …/release``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ..deps import CurrentUser, DatabaseDep, SessionDep, database_of
from ..errors import InvalidRequest
from ..fast_route import post
from . import group_commit, service, spending
from .fast_path import CaptureRoute, HoldRoute, ReleaseRoute, SpendRoute
from .schemas import (
    BalanceOut,
    CaptureIn,
    ExpiringOut,
    GrantOut,
    HoldIn,
    HoldOut,
    SpendIn,
    SpendOut,
    TransactionList,
    TransactionOut,
)

router = APIRouter(tags=["credits"])
# spend, create_hold, capture_hold and release_hold take the request, not dependencies: the credits fast path
# (tally.ledger.fast_path) calls them as plain functions, without FastAPI's dependency solving.


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are opaque to clients; today they are the id of the last item seen."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidRequest("Invalid cursor.", param="cursor")
    return int(cursor)


Limit = Annotated[int, Query(ge=1, le=100)]
HoldId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^hold_[A-Za-z0-9_-]+$")]


@router.get("/v1/credits", response_model=BalanceOut)
async def balance(principal: CurrentUser, session: SessionDep) -> BalanceOut:
    view = await service.balance_view(session, principal.user_id)
    return BalanceOut(balance=view.balance, available=view.available, held=view.held,
                      grants=[GrantOut(id=g.id, category=g.category, source=g.source, remaining=g.remaining,
                                       expires_at=g.expires_at) for g in view.grants],
                      expiring_soon=[ExpiringOut(amount=amount, expires_at=at) for amount, at in view.expiring_soon])


@router.get("/v1/credits/transactions", response_model=TransactionList)
async def transactions(principal: CurrentUser, session: SessionDep, limit: Limit = 20,
                       cursor: str | None = None) -> TransactionList:
    """The wallet's ledger transactions, newest first; pass ``next_cursor`` as ``cursor`` for more."""
    after = parse_cursor(cursor)
    rows, has_more = await service.list_transactions(session, principal.user_id, limit=limit, starting_after=after)
    return TransactionList(data=[TransactionOut(**row.__dict__) for row in rows], has_more=has_more,
                           next_cursor=str(rows[-1].id) if has_more else None)


@post(router, "/v1/credits/spend", SpendRoute, response_model=SpendOut,
      responses={409: {"description": "insufficient_credits, or idempotency_key reused differently"}})
async def spend(body: SpendIn, principal: CurrentUser, request: Request) -> SpendOut:
    """Debit coins atomically, once per ``idempotency_key``; never below zero."""
    # No ensure_user: a spend only moves coins of an existing wallet (a user without one has none to spend).
    # Group commit: the spends arriving together share one statement and one commit, each its own answer.
    spent = await group_commit.spend(group_commit.groups_of(request.app.state), user_id=principal.user_id,
                                     amount=body.amount, reason=body.reason, idempotency_key=body.idempotency_key)
    return SpendOut(transaction_id=spent.transaction_id, amount=spent.amount, balance=spent.balance,
                    available=spent.available, replayed=spent.replayed)


_HOLD_CONFLICT = {409: {"description": "insufficient_credits; idempotency_key reused differently; or the hold is "
                                       "no longer held (the body's ``hold`` is its current state)"}}
_NO_SUCH_HOLD = {404: {"description": "no hold of the caller's with this id"}}


def _hold_out(hold: spending.Hold, available: int, balance: int | None = None) -> HoldOut:
    return HoldOut(id=hold.id, amount=hold.amount, status=hold.status, captured=hold.captured, released=hold.released,
                   reason=hold.reason, created_at=hold.created_at, expires_at=hold.expires_at, available=available,
                   balance=balance)


@post(router, "/v1/credits/holds", HoldRoute, response_model=HoldOut, status_code=201,
      responses={**_HOLD_CONFLICT, 200: {"description": "a replay of the key: the hold as it is now"}})
async def create_hold(body: HoldIn, principal: CurrentUser, request: Request, response: Response) -> HoldOut:
    """Reserve credits for work whose cost is known at the end; capture or release it later. Once per
    ``idempotency_key`` (a replay answers 200 with the hold as it is now)."""
    hold, available, replayed = await group_commit.hold(
        group_commit.groups_of(request.app.state), user_id=principal.user_id, amount=body.amount,
        idempotency_key=body.idempotency_key, reason=body.reason, expires_in_seconds=body.expires_in_seconds)
    if replayed:
        response.status_code = 200
    return _hold_out(hold, available)


@router.get("/v1/credits/holds/{hold_id}", response_model=HoldOut, responses=_NO_SUCH_HOLD)
async def get_hold(hold_id: HoldId, principal: CurrentUser, db: DatabaseDep) -> HoldOut:
    hold, available = await spending.get_hold(db, user_id=principal.user_id, hold_id=hold_id)
    return _hold_out(hold, available)


@post(router, "/v1/credits/holds/{hold_id}/capture", CaptureRoute, response_model=HoldOut,
      responses={**_HOLD_CONFLICT, **_NO_SUCH_HOLD})
async def capture_hold(hold_id: HoldId, principal: CurrentUser, request: Request,
                       body: CaptureIn | None = None) -> HoldOut:
    """Spend ``amount`` (default: all) of the hold and release the rest."""
    hold, balance, available = await group_commit.capture(group_commit.groups_of(request.app.state),
                                                          user_id=principal.user_id, hold_id=hold_id,
                                                          amount=body.amount if body else None)
    return _hold_out(hold, available, balance)


@post(router, "/v1/credits/holds/{hold_id}/release", ReleaseRoute, response_model=HoldOut,
      responses={**_HOLD_CONFLICT, **_NO_SUCH_HOLD})
async def release_hold(hold_id: HoldId, principal: CurrentUser, request: Request) -> HoldOut:
    hold, available = await spending.release(database_of(request.app), user_id=principal.user_id, hold_id=hold_id)
    return _hold_out(hold, available)
