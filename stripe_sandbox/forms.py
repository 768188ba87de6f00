"""Decode Stripe's form encoding (``a[b][0][c]=x``) into nested dicts and lists.

Stripe's SDKs always index arrays (``expand[0]=x``); ``expand[]=x`` is accepted too.
Dicts whose keys are all integers become lists, in index order.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid_request

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    rest = key[len(head):]
    parts = _KEY_PART.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        raise invalid_request(f"Invalid parameter name: {key}", param=key)
    return [head, *parts]


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            node[k] = _listify(v)
        if node and all(isinstance(k, str) and (k.isdigit() or k.startswith("\0")) for k in node):
            return [node[k] for k in sorted(node, key=_index_order)]
    return node


def _index_order(k: str) -> tuple[int, int]:
    if k.startswith("\0"):
        return (1, int(k[1:]))
    return (0, int(k))


def parse_form(body: bytes | str) -> dict[str, Any]:
    text = body.decode() if isinstance(body, bytes) else body
    if not text:
        return {}
    root: dict[str, Any] = {}
    appended = 0
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split_key(key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                # "a[]=x": each occurrence appends a new element
                part = f"\0{appended}"
                appended += 1
            if not isinstance(node, dict):
                raise invalid_request(f"Invalid parameter name: {key}", param=parts[0])
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise invalid_request(f"Invalid parameter name: {key}", param=parts[0])
                node = child
    return _listify(root)
