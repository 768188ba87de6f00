"""``POST /v1/webhooks/stripe`` and the operator routes over the inbox.

``mount_receiver`` is the one declaration of the receiver: other paths (the compatibility routes) mount it
with it, so every path that receives Stripe's deliveries is the same route class, endpoint and schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from ..auth.deps import AdminUser
from ..errors import InvalidRequest
from ..fast_route import FastCall, fast_route
from . import service
from .schemas import EventList, EventOut, Received
from .signature import StripeEvent, verified_event

router = APIRouter(tags=["webhooks"])
admin_router = APIRouter(prefix="/v1/admin/events", tags=["admin"])

# The receiver's errors; also declared where the compatibility routes mount it.
RECEIVER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad, missing or stale signature, or a body that is not an event; nothing stored."},
    503: {"description": "No webhook signing secret configured; nothing stored."},
}


RECEIVED = Received()


async def receive_stripe_webhook(request: Request, event: StripeEvent) -> Received:
    """Verified → stored once in the inbox (committed: the inbox workers will claim it) → 200. A duplicate
    delivery is answered 200 too and is not processed again."""
    await request.app.state.inbox.store(event)
    return RECEIVED


async def _call_receiver(call: FastCall) -> Received:
    """The endpoint with what FastAPI would give it: the request and its verified event (``verified_event``,
    the dependency itself, run here instead of through FastAPI's dependency solving)."""
    return await call.endpoint(call.request, await verified_event(call.request))


# Stripe bursts its deliveries at this route: it skips FastAPI's dependency solving (``tally.fast_route``).
WebhookReceiverRoute = fast_route(_call_receiver, name="WebhookReceiverRoute")


def mount_receiver(router: APIRouter, path: str, *, summary: str) -> None:
    router.add_api_route(path, receive_stripe_webhook, methods=["POST"], response_model=Received,
                         responses=RECEIVER_ERRORS, summary=summary, route_class_override=WebhookReceiverRoute)


def receiver_routes(routes: Sequence[BaseRoute]) -> Iterator[RouteContext]:
    """Every mounted receiver route: ``/v1/webhooks/stripe`` and the compatibility aliases that
    ``TALLY_COMPAT_ROUTES`` mounts. The rate limiter exempts them, found from the app itself, so it keeps no
    list of paths."""
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, WebhookReceiverRoute) and context.path:
            yield context


mount_receiver(router, "/v1/webhooks/stripe", summary="Stripe webhook endpoint")


EventStatus = Literal["pending", "processed", "ignored", "failed"]


@admin_router.get("", response_model=EventList, summary="Webhook events, newest first",
                  responses={404: {"description": "The cursor names no event"}})
async def list_events(
    request: Request, admin: AdminUser,
    status: EventStatus | None = None,
    type: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=255, description="next_cursor of the previous page")] = None,
) -> EventList:
    async with request.app.state.db.transaction() as session:
        rows, has_more = await service.list_events(session, status=status, event_type=type, limit=limit,
                                                   cursor=cursor)
    data = [EventOut(**service.as_json(r)) for r in rows]
    return EventList(data=data, has_more=has_more, next_cursor=data[-1].id if has_more and data else None)


@admin_router.post("/{event_id}/replay", response_model=EventOut, summary="Process an event again",
                   responses={404: {"description": "No such event"}})
async def replay_event(request: Request, admin: AdminUser, event_id: str) -> EventOut:
    if len(event_id) > 255:
        raise InvalidRequest("Event id too long.", param="event_id")
    async with request.app.state.db.transaction() as session:
        row = await service.replay(session, event_id)
        return EventOut(**service.as_json(row))
