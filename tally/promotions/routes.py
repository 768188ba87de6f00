"""``/admin/promotions``: every promotion code with its redemptions, the revenue after its discount and the
discount it gave; a form to create one (the options of ``tally promo create``) and a button to deactivate."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from ..admin.routes import AdminDep, AdminRoute, render
from ..catalog.service import Catalog
from ..deps import CatalogDep, DatabaseDep, PlanBookDep, StripeDep
from ..errors import InvalidRequest
from ..subscriptions.plans import PlanBook
from . import service
from .view import promotion_rows

router = APIRouter(prefix="/admin/promotions", route_class=AdminRoute, include_in_schema=False)


def _page(request: Request, admin: AdminDep, rows: list[dict[str, object]], catalog: Catalog, book: PlanBook, *,
          done: str | None = None, error: str | None = None, form: dict[str, str] | None = None,
          status_code: int = 200) -> Response:
    return render(request, "admin/promotions.html", {
        "admin": admin, "csrf_token": admin.csrf or "", "rows": rows, "done": done, "error": error,
        "form": form or {}, "packs": list(catalog.packs), "plans": list(book.plans),
    }, status_code=status_code)


@router.get("")
async def promotions(request: Request, admin: AdminDep, db: DatabaseDep, client: StripeDep, catalog: CatalogDep,
                     book: PlanBookDep, done: str | None = None) -> Response:
    rows = await promotion_rows(db, client)
    return _page(request, admin, rows, catalog, book, done=(done or "")[:200] or None)


def _number(value: str, what: str) -> int | None:
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{what} is a whole number.", param=what) from None


def _spec(form: dict[str, str], packs: list[str], plans: list[str]) -> service.PromotionSpec:
    kind = form.get("kind", "percent")
    try:
        percent = Decimal(form["value"]) if kind == "percent" and form.get("value", "").strip() else None
    except InvalidOperation:
        raise InvalidRequest("The percentage is a number.", param="value") from None
    try:
        expires = date.fromisoformat(form["expires"]) if form.get("expires") else None
    except ValueError:
        raise InvalidRequest("The last day is a date (YYYY-MM-DD).", param="expires") from None
    return service.PromotionSpec(
        code=form.get("code", "").strip(), duration=form.get("duration", "once"), percent_off=percent,
        amount_off=_number(form.get("value", ""), "amount") if kind == "amount" else None,
        currency=form.get("currency") or None if kind == "amount" else None,
        months=_number(form.get("months", ""), "months") if form.get("duration") == "repeating" else None,
        max_redemptions=_number(form.get("max_redemptions", ""), "max_redemptions"), expires=expires,
        first_time_only=form.get("first_time_only") == "on", plans=tuple(plans), packs=tuple(packs))


@router.post("")
async def create(request: Request, admin: AdminDep, db: DatabaseDep, client: StripeDep, catalog: CatalogDep,
                 book: PlanBookDep, packs: Annotated[list[str] | None, Form()] = None,
                 plans: Annotated[list[str] | None, Form()] = None) -> Response:
    raw = await request.form()
    admin.check_csrf(str(raw.get("csrf_token") or ""))
    form = {k: str(v)[:200] for k, v in raw.items() if k not in ("packs", "plans", "csrf_token")}
    try:
        promo = await service.create_promotion(client, catalog, book, _spec(form, packs or [], plans or []),
                                               today=datetime.now(UTC).date())
    except InvalidRequest as exc:
        rows = await promotion_rows(db, client)
        return _page(request, admin, rows, catalog, book, error=exc.message, form=form, status_code=400)
    return RedirectResponse(f"/admin/promotions?done={quote('Created ' + promo['code'])}", status_code=303)


@router.post("/{code}/deactivate")
async def deactivate(admin: AdminDep, client: StripeDep, code: str,
                     csrf_token: Annotated[str | None, Form()] = None) -> Response:
    admin.check_csrf(csrf_token)
    promo = await service.deactivate(client, code[:64])
    return RedirectResponse(f"/admin/promotions?done={quote('Deactivated ' + promo['code'])}", status_code=303)
