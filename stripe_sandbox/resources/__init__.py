"""One module per Stripe resource; importing them registers their routes, pages and jobs."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ..routing import PAGE_ROUTES, START_HOOKS

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def page_routes() -> list[Any]:
    return list(PAGE_ROUTES)


def on_start(sb: Any) -> None:
    for hook in START_HOOKS:
        hook(sb)
