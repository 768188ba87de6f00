"""Stripe's list envelope: ``limit``, ``starting_after``, ``ending_before``, ``has_more``, newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import invalid_request, no_such
from .params import Params
from .store import Collection, Obj, Store

LIST_PARAMS = ("limit", "starting_after", "ending_before")


def list_object(url: str, data: list[Obj], has_more: bool) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _cursors(store: Store, params: Params) -> tuple[str | None, str | None]:
    """``starting_after`` or ``ending_before`` (one at most), naming a stored object."""
    starting_after = params.optional_str("starting_after")
    ending_before = params.optional_str("ending_before")
    if starting_after and ending_before:
        raise invalid_request("You may only specify one of these parameters: ending_before, starting_after.",
                              param="ending_before")
    cursor = starting_after or ending_before
    if cursor is not None and store.seq_of.get(cursor) is None:
        raise no_such("object", cursor, "starting_after" if starting_after else "ending_before")
    return starting_after, ending_before


def paginate(
    store: Store,
    collection: Collection,
    params: Params,
    url: str,
    where: Callable[[Obj], bool] | None = None,
) -> Obj:
    limit = params.int("limit", 10, minimum=1, maximum=100)
    assert limit is not None
    starting_after, ending_before = _cursors(store, params)
    page: list[Obj] = []
    has_more = False
    if ending_before:
        ids = collection.oldest_first_after(store.seq_of[ending_before])
    else:
        ids = collection.newest_first(store.seq_of[starting_after] if starting_after else None)
    for object_id in ids:
        obj = store.objects[object_id]
        if where is not None and not where(obj):
            continue
        if len(page) == limit:
            has_more = True
            break
        page.append(obj)
    if ending_before:
        page.reverse()
    return list_object(url, page, has_more)


def embedded_list(url: str, items: list[Obj], total: int | None = None) -> dict[str, Any]:
    """A sub-list as Stripe nests it (e.g. ``charge.refunds``)."""
    out = list_object(url, items[:10], len(items) > 10)
    if total is not None:
        out["total_count"] = total
    return out
