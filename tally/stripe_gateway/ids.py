"""The one id helper: Stripe names a related object by its id, or by the object itself once expanded."""

from __future__ import annotations

from typing import Any


def object_id(value: Any) -> str | None:
    """The id of ``value``: an expanded object's ``id``, an id string as is, None for anything else (absent,
    null, or the empty string)."""
    if isinstance(value, dict):
        found = value.get("id")
        return found if isinstance(found, str) and found else None
    return value if isinstance(value, str) and value else None
