"""``/admin/health`` (a page) and ``/admin/health.json``: the doctor's report on this running Tally, for the
API key or an admin JWT (the page also takes the dashboard's sign-in cookie). ``tally doctor`` reads the JSON."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ..admin.routes import AdminDep, AdminRoute, render
from ..deps import AdminUser, ServicesDep
from ..services import Services
from .checks import Context
from .runner import PASSING_SCORE, Report, run_doctor

router = APIRouter(prefix="/admin", tags=["admin"])

async def _report(services: Services, *, go_live: bool, frontend: bool) -> Report:
    async with httpx.AsyncClient(base_url=services.settings.public_url, timeout=15) as http:
        ctx = Context(settings=services.settings, stripe=services.stripe, webhook_secrets=services.webhook_secrets,
                      db=services.db, http=http)
        return await run_doctor(ctx, go_live=go_live, frontend=frontend)


@router.get("/health.json", summary="Production health: score out of 8 with reasons and fixes")
async def health_json(admin: AdminUser, services: ServicesDep, go_live: bool = False,
                      frontend: bool = Query(True, description="probe this service's routes as a frontend does"),
                      ) -> dict[str, Any]:
    return (await _report(services, go_live=go_live, frontend=frontend)).as_json()


async def health_page(request: Request, admin: AdminDep, services: ServicesDep, go_live: bool = False) -> Response:
    """The report as a page. Like the dashboard it links from: a bearer header, or the admin sign-in cookie
    (a browser is sent to ``/admin/login`` first). ``AdminRoute`` adds the pages' security headers."""
    report = await _report(services, go_live=go_live, frontend=True)
    return render(request, "admin/health.html", {"report": report, "passing": PASSING_SCORE, "admin": admin,
                                                 "csrf_token": admin.csrf or ""})


router.add_api_route("/health", health_page, methods=["GET"], include_in_schema=False,
                     route_class_override=AdminRoute)
