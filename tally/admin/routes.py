"""The operator dashboard at ``/admin``: revenue, payment and webhook health, MRR and its movement, churn, ARPU,
decline codes, failed events with a replay button, and orders searchable by user, order or Stripe id.

Pages here answer like the app's pages (plain-words error pages, security headers, ``no-store``), except that a
browser without admin credentials is sent to ``/admin/login`` instead of the users' sign-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import FileResponse, RedirectResponse, Response

from .. import currency as money
from ..auth.deps import token_verifier_of
from ..deps import DatabaseDep, PlanBookDep, settings_of
from ..errors import InvalidRequest
from ..pages.session import load_session
from ..pages.web import PageError, error_page, finish, safe_next
from ..reversals.repository import open_disputes, recently_closed
from ..templating import templates
from ..webhooks import service as inbox
from . import service
from .auth import (Admin, AdminCsrfRefused, AdminSignInRequired, admin_from_token, clear_cookie, require_admin,
                   write_cookie)
from .view import dashboard_view

HERE = Path(__file__).parent
DEFAULT_DAYS = 30
OPEN_DISPUTE_ROWS, CLOSED_DISPUTE_ROWS = 200, 50


class AdminRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def admin_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except AdminSignInRequired as exc:
                response = RedirectResponse(f"/admin/login?next={quote(exc.next_path, safe='/')}", status_code=303)
            except AdminCsrfRefused:
                response = error_page(request, PageError(
                    403, "This form has expired", "Reload the dashboard and try again."))
            except Exception as exc:  # noqa: BLE001 — an error page in plain words, never a stack trace
                response = error_page(request, exc)
            return finish(request, response)

        return admin_handler


router = APIRouter(prefix="/admin", route_class=AdminRoute, include_in_schema=False)
AdminDep = Annotated[Admin, Depends(require_admin)]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    settings = settings_of(request.app)
    base = {"settings": settings, "sandbox_mode": settings.sandbox_mode}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def resolve_period(first: date | None, last: date | None, days: int | None, today: date) -> service.Period:
    if first is None and last is None:
        return service.Period.last(days or DEFAULT_DAYS, today)
    last = last or today
    first = first or last
    if first > last:
        raise InvalidRequest("The period's first day comes after its last day.", param="from")
    if (last - first).days >= service.MAX_DAYS:
        raise InvalidRequest(f"A period is at most {service.MAX_DAYS} days.", param="from")
    return service.Period(first, last)


@router.get("")
async def dashboard(
    request: Request, admin: AdminDep, db: DatabaseDep, book: PlanBookDep,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    days: Annotated[int | None, Query(ge=1, le=service.MAX_DAYS)] = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    replayed: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    period = resolve_period(first, last, days, datetime.now(UTC).date())
    query = (q or "").strip() or None
    async with db.transaction() as session:
        data = await service.dashboard(session, book, period, query)
    return render(request, "admin/dashboard.html", {
        "view": dashboard_view(data), "admin": admin, "csrf_token": admin.csrf or "", "replayed": replayed,
        "days": days if first is None and last is None else None, "now": datetime.now(UTC)})


@router.get("/disputes")
async def disputes(request: Request, admin: AdminDep, db: DatabaseDep) -> Response:
    """The open disputes, the soonest evidence deadline first, then the recently closed ones."""
    async with db.transaction() as session:
        open_rows = await open_disputes(session, limit=OPEN_DISPUTE_ROWS)
        closed_rows = await recently_closed(session, limit=CLOSED_DISPUTE_ROWS)
    return render(request, "admin/disputes.html", {
        "open": open_rows, "closed": closed_rows, "open_limit": OPEN_DISPUTE_ROWS,
        "closed_limit": CLOSED_DISPUTE_ROWS, "now": datetime.now(UTC), "admin": admin, "csrf_token": admin.csrf or ""})


@router.post("/events/{event_id}/replay")
async def replay(admin: AdminDep, db: DatabaseDep, event_id: str,
                 csrf_token: Annotated[str | None, Form()] = None) -> Response:
    admin.check_csrf(csrf_token)
    if len(event_id) > 255:
        raise InvalidRequest("Event id too long.", param="event_id")
    async with db.transaction() as session:
        await inbox.replay(session, event_id)
    return RedirectResponse(f"/admin?replayed={event_id}#failed-events", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login(request, safe_next(next, "/admin"))


def _login(request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> Response:
    settings = settings_of(request.app)
    return render(request, "admin/login.html", {
        "next": next_path, "error": error, "csrf_token": load_session(request).csrf,
        "api_key_configured": bool(settings.api_key), "sandbox_mode": settings.sandbox_mode},
        status_code=status_code)


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form(max_length=8192)] = "",
                next: Annotated[str, Form(max_length=2000)] = "/admin",
                csrf_token: Annotated[str | None, Form()] = None) -> Response:
    load_session(request).check_csrf(csrf_token)  # login CSRF: the form came from this site
    next_path = safe_next(next, "/admin")
    if not next_path.startswith("/admin"):
        next_path = "/admin"
    principal = await admin_from_token(request, key.strip()) if key.strip() else None
    if principal is None:
        return _login(request, next_path, "That key was not accepted. Use TALLY_API_KEY, or a JWT whose role "
                                          "is admin.", status_code=401)
    response = RedirectResponse(next_path, status_code=303)
    if principal.via_api_key:
        write_cookie(request, response, api_key=key.strip())
    else:
        claims = await token_verifier_of(request.app).verify(key.strip())
        exp = claims.get("exp")
        write_cookie(request, response, token=key.strip(), expires_at=exp if isinstance(exp, int) else None)
    return response


@router.post("/logout")
async def logout(request: Request, admin: AdminDep, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    admin.check_csrf(csrf_token)
    response = RedirectResponse("/admin/login", status_code=303)
    clear_cookie(response)
    return response


@router.get("/admin.css")
async def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "admin.css", media_type="text/css")


def money_filter(amount: int | None, currency: str) -> str:
    return "—" if amount is None else money.format_amount(int(amount), currency)


def duration_filter(seconds: float) -> str:
    """``21 d 6 h``, ``5 min 3 s``: two units are enough to see whether the queue is stuck."""
    left = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts[:2])


templates.env.filters["money"] = money_filter
templates.env.filters["duration"] = duration_filter
templates.env.filters["pct"] = lambda rate, digits=1: "—" if rate is None else f"{rate * 100:.{digits}f} %"
