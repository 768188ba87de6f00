"""``/admin/price-changes``: each scheduled price change and its progress (subscriptions moving, told, switched)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..admin.routes import AdminDep, AdminRoute, render
from ..deps import DatabaseDep
from . import service

router = APIRouter(prefix="/admin/price-changes", route_class=AdminRoute, include_in_schema=False)


@router.get("")
async def price_changes(request: Request, admin: AdminDep, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        rows = await service.progress(session)
    for row in rows:
        row["effective_on"] = datetime.fromtimestamp(row["effective_at"], UTC).strftime("%Y-%m-%d")
    return render(request, "admin/price_changes.html", {"admin": admin, "csrf_token": admin.csrf or "",
                                                         "rows": rows})
