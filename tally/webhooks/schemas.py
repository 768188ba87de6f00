"""Response shapes of the webhook routes."""

from __future__ import annotations

from pydantic import BaseModel


class Received(BaseModel):
    received: bool = True


class EventOut(BaseModel):
    id: str
    type: str
    livemode: bool
    created: int
    status: str
    attempts: int
    last_error: str | None
    received_at: str | None
    processed_at: str | None


class EventList(BaseModel):
    object: str = "list"
    data: list[EventOut]
    has_more: bool
    next_cursor: str | None
