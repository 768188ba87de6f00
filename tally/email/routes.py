"""``/outbox``: the emails Tally caught instead of sending (sandbox mode, or no ``TALLY_SMTP_URL``), newest
first; ``GET /v1/admin/outbox`` gives the same as JSON. In sandbox mode the page is open (a local developer
tool, no real customer data); with a real Stripe key both need the API key."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from ..auth.deps import admin_user
from ..config import Settings
from ..db import Database
from ..deps import DatabaseDep, SettingsDep
from ..errors import NotFound
from . import service
from .attachments import load_attachment
from .models import OutboxEmail

router = APIRouter(tags=["email"])


class OutboxEmailOut(BaseModel):
    id: int
    kind: str
    to: str
    subject: str
    body: str
    html: str | None = None
    attachment: str | None = None  # the file's name; GET /outbox/{id}/attachment gives it
    status: str
    created_at: datetime


class OutboxOut(BaseModel):
    data: list[OutboxEmailOut]


async def _rows(request: Request, settings: Settings, db: Database, to: str | None) -> list[Any]:
    if not settings.sandbox_mode:
        await admin_user(request)
    async with db.transaction() as session:
        return await service.list_outbox(session, to=to)


def _out(row: Any) -> OutboxEmailOut:
    return OutboxEmailOut(id=row.id, kind=row.kind, to=row.to_address, subject=row.subject, body=row.body,
                          html=row.html_body, attachment=row.attachment_name, status=row.status,
                          created_at=row.created_at)


@router.get("/v1/admin/outbox", response_model=OutboxOut,
            responses={401: {"description": "Not signed in"}, 403: {"description": "Needs the API key"}})
async def outbox_json(request: Request, db: DatabaseDep, to: str | None = Query(None, max_length=320)) -> OutboxOut:
    """Emails in the outbox (caught or queued), newest first, optionally for one address."""
    await admin_user(request)
    async with db.transaction() as session:
        return OutboxOut(data=[_out(r) for r in await service.list_outbox(session, to=to)])


def _attachment_link(row: Any) -> str:
    if not row.attachment_name:
        return ""
    return (f"<p>Attached: <a href=/outbox/{row.id}/attachment>{html.escape(row.attachment_name)}</a></p>")


@router.get("/outbox/{email_id}/attachment", include_in_schema=False,
            responses={404: {"description": "No such email, or it has no attachment"}})
async def outbox_attachment(request: Request, settings: SettingsDep, db: DatabaseDep, email_id: str) -> Response:
    """The file an outbox email carries, rendered now from the database (see ``tally.email.attachments``)."""
    if not settings.sandbox_mode:
        await admin_user(request)  # before looking at the id: an operator route answers strangers 401/403 only
    if not email_id.isdigit() or len(email_id) > 18:
        raise NotFound("No such attachment.", param="email_id")
    async with db.transaction() as session:
        row = await session.get(OutboxEmail, int(email_id))
        attachment = await load_attachment(session, row) if row is not None else None
    if attachment is None:
        raise NotFound("No such attachment.", param="email_id")
    return Response(attachment.data, media_type=attachment.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{attachment.filename}"'})


@router.get("/outbox", response_class=HTMLResponse, include_in_schema=False)
async def outbox_page(request: Request, settings: SettingsDep, db: DatabaseDep,
                      to: str | None = Query(None, max_length=320)) -> HTMLResponse:
    rows = await _rows(request, settings, db, to)
    items = "".join(
        f"<article><h2>{html.escape(r.subject)}</h2><p class=meta>to {html.escape(r.to_address)} · "
        f"{html.escape(r.kind)} · {html.escape(r.status)} · {r.created_at:%Y-%m-%d %H:%M:%S}</p>"
        f"<pre>{html.escape(r.body)}</pre>{_attachment_link(r)}</article>" for r in rows) or "<p>No emails yet.</p>"
    page = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'><title>Outbox · Tally</title>"
            "<link rel=stylesheet href=/assets/tally.css></head><body class=outbox><main class=page>"
            "<h1>Outbox</h1><p>Emails caught instead of sent (no SMTP server configured, or sandbox mode).</p>"
            f"{items}</main></body></html>")
    return HTMLResponse(page)
