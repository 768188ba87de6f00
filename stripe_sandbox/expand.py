"""``expand[]``: replace ids by objects along dotted paths (lists expand through ``data.``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .errors import invalid_request

MAX_DEPTH = 4

# (object type, field) -> how to load the expanded value when it is not a plain stored id
Loader = Callable[[Any, dict[str, Any]], Any]
SPECIAL_EXPANSIONS: dict[tuple[str, str], Loader] = {}


def expandable(object_type: str, field: str) -> Callable[[Loader], Loader]:
    """Register a field that expands to something computed (e.g. a session's ``line_items``)."""

    def register(loader: Loader) -> Loader:
        SPECIAL_EXPANSIONS[(object_type, field)] = loader
        return loader

    return register


def apply(sb: Any, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    if not paths:
        return obj
    out = copy.copy(obj)
    for path in paths:
        if not isinstance(path, str) or not path:
            raise invalid_request("Invalid expand parameter.", param="expand")
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}", param="expand")
        _expand(sb, out, parts, path)
    return out


def _expanded_value(sb: Any, value: Any, path: str) -> Any:
    """An id becomes the object it names; an object (or null) stays; anything else cannot be expanded."""
    if isinstance(value, str):
        found = sb.store.get(value)
        if found is None:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        return found
    if value is not None and not isinstance(value, dict):
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    return value


def _expand(sb: Any, node: dict[str, Any], parts: list[str], path: str) -> None:
    head, rest = parts[0], parts[1:]
    if node.get("object") == "list" and head == "data":
        if rest:
            node["data"] = [copy.copy(item) for item in node["data"]]
            for item in node["data"]:
                _expand(sb, item, rest, path)
        return
    object_type = node.get("object", "")
    special = SPECIAL_EXPANSIONS.get((object_type, head))
    if head not in node and special is None:
        raise invalid_request(
            f"This property cannot be expanded ({path}).", param="expand")
    value = special(sb, node) if special is not None else _expanded_value(sb, node.get(head), path)
    if isinstance(value, dict):
        value = copy.copy(value)
        if rest:
            _expand(sb, value, rest, path)
    node[head] = value
