"""Events: retrieve; list with ``type``, ``types[]`` and ``created`` filters (30 days kept, as Stripe)."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..listing import LIST_PARAMS, paginate
from ..params import Params
from ..routing import route
from ..store import Collection, Obj


def created_filter(p: Params) -> tuple[int | None, int | None]:
    """``created`` as an exact integer or ``created[gt|gte|lt|lte]``."""
    raw = p.raw("created")
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, str):
        exact = p.int("created")
        return exact, exact
    bounds = p.dict("created")
    assert bounds is not None
    bounds.only("gt", "gte", "lt", "lte")
    gt, gte, lt, lte = (bounds.int(k) for k in ("gt", "gte", "lt", "lte"))
    low = max([b for b in (gte, gt + 1 if gt is not None else None) if b is not None], default=None)
    high = min([b for b in (lte, lt - 1 if lt is not None else None) if b is not None], default=None)
    return low, high


@route("GET", "/v1/events/{event_id}")
def retrieve(sb: Any, p: Params, event_id: str) -> Obj:
    event = sb.store.get(event_id, "event")
    if event is None:
        raise no_such("event", event_id)
    return event


@route("GET", "/v1/events", params=(*LIST_PARAMS, "type", "types", "created", "delivery_success"))
def list_(sb: Any, p: Params) -> Obj:
    type_ = p.optional_str("type")
    types = p.str_list("types")
    if type_ and types:
        raise invalid_request("You may only specify one of these parameters: type, types.", param="types")
    low, high = created_filter(p)
    oldest = sb.clock.now_int() - 30 * 86400

    def where(event: Obj) -> bool:
        created = event["created"]
        return (created >= oldest and (low is None or created >= low) and (high is None or created <= high))

    store = sb.store
    if type_ and "*" not in type_:
        collection = store.collection("event", "type", type_)
    elif types and not any("*" in t for t in types):
        collection = Collection()
        for name in dict.fromkeys(types):
            for object_id in store.collection("event", "type", name).ids:
                collection.add(store.seq_of[object_id], object_id)
    else:
        prefixes = [t.rstrip("*") for t in ([type_] if type_ else types)]
        base_where = where

        def where(event: Obj) -> bool:  # noqa: F811 - wildcard types ("invoice.*") filter by prefix
            return base_where(event) and (not prefixes or any(event["type"].startswith(x) for x in prefixes))

        collection = store.collection("event")
    return paginate(store, collection, p, "/v1/events", where)
