"""``GET /v1/invoices``: the caller's invoices, newest first, cursor-paginated."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import CurrentUser, SessionDep
from ..ledger.routes import Limit, parse_cursor
from . import service
from .schemas import InvoiceList, InvoiceOut

router = APIRouter(tags=["invoices"])


@router.get("/v1/invoices", response_model=InvoiceList)
async def invoices(principal: CurrentUser, session: SessionDep, limit: Limit = 20,
                   cursor: str | None = None) -> InvoiceList:
    after = parse_cursor(cursor)
    rows, has_more = await service.list_invoices(session, principal.user_id, limit=limit, starting_after=after)
    return InvoiceList(data=[InvoiceOut.of(r) for r in rows], has_more=has_more,
                       next_cursor=str(rows[-1].id) if has_more else None)
