"""The API's route table. Resource modules register handlers with ``@route(...)``.

A handler is a plain synchronous function ``handler(sb, params, **path_params) -> dict``: the event loop
runs it to completion, so no other request can observe a half-applied change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., dict[str, Any]]

_PATH_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    params: frozenset[str]  # accepted top-level parameters (``expand`` is always accepted)
    pattern: re.Pattern[str]


ROUTES: list[Route] = []


def route(method: str, path: str, params: tuple[str, ...] | list[str] = ()) -> Callable[[Handler], Handler]:
    pattern = re.compile("^" + _PATH_PARAM.sub(r"(?P<\1>[^/]+)", path) + "$")

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, handler, frozenset(params) | {"expand"}, pattern))
        return handler

    return register


class Router:
    """Finds the route for a method and path; static paths by dict lookup, others by pattern."""

    def __init__(self, routes: list[Route]) -> None:
        self.static: dict[tuple[str, str], Route] = {}
        self.dynamic: list[Route] = []
        for r in routes:
            if "{" in r.path:
                self.dynamic.append(r)
            else:
                self.static[(r.method, r.path)] = r
        # Literal segments win over parameters (``/v1/customers/search`` before ``/v1/customers/{id}``).
        self.dynamic.sort(key=lambda r: r.path.count("{"))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        found = self.static.get((method, path))
        if found:
            return found, {}
        for r in self.dynamic:
            if r.method == method:
                m = r.pattern.match(path)
                if m:
                    return r, m.groupdict()
        return None

    def allows_path(self, path: str) -> bool:
        return any(r.path == path or r.pattern.match(path) for r in [*self.static.values(), *self.dynamic])


# Hosted pages (Checkout, 3-D Secure, ...) and the control API: plain Starlette routes.
PAGE_ROUTES: list[Any] = []

# Called once the server runs (after a restart too), e.g. to schedule pending expiries again.
START_HOOKS: list[Callable[[Any], None]] = []


def on_start(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    START_HOOKS.append(hook)
    return hook
