"""Small helpers every kind of test uses: poll until something holds, and run SQL on a test database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from tally.db import libpq_url


def poll(predicate: Callable[[], Any], *, timeout: float, what: str, every: float) -> Any:
    """``predicate()``'s first truthy value, asked every ``every`` seconds for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def sql_at(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``query`` on the database at ``url`` (autocommitted; [] for a statement without rows)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(query, args or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []
