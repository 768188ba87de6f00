"""Saved answers of requests sent with an ``Idempotency-Key``, kept 24 hours as Stripe keeps them.

Keys age on the sandbox's clock (real time plus what ``/_sandbox/clock/advance`` added): the clock stands for
Stripe's time everywhere else (session expiry, retries), so advancing it a day forgets keys as a day on Stripe
would, and tests can prove it without waiting. With ``--data`` the answers are written to the store's SQLite
file, so a restarted sandbox still replays them.

Each key is saved once, when first used, and the clock never goes back, so saving order is age order: a deque
of (saved_at, key) lets pruning look only at the oldest entries (O(1) per key over its lifetime).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

KEEP_SECONDS = 24 * 3600


class Saved(NamedTuple):
    fingerprint: str  # of method, path and parameters: the same key with other parameters is refused
    status: int
    body: bytes
    saved_at: float


class IdempotencyKeys:
    def __init__(self, now: Callable[[], float], db: sqlite3.Connection | None = None) -> None:
        self._now = now
        self._db = db
        self._saved: dict[str, Saved] = {}
        self._order: deque[tuple[float, str]] = deque()
        if db is not None:
            db.execute("CREATE TABLE IF NOT EXISTS idempotency "
                       "(key TEXT PRIMARY KEY, fingerprint TEXT, status INTEGER, body BLOB, saved_at REAL)")
            rows = db.execute("SELECT key, fingerprint, status, body, saved_at FROM idempotency ORDER BY saved_at")
            for key, fingerprint, status, body, saved_at in rows:
                self._saved[key] = Saved(fingerprint, status, bytes(body), saved_at)
                self._order.append((saved_at, key))
        self.prune()

    def get(self, key: str) -> Saved | None:
        self.prune()
        return self._saved.get(key)

    def save(self, key: str, fingerprint: str, status: int, body: bytes) -> None:
        now = self._now()
        self._saved[key] = Saved(fingerprint, status, body, now)
        self._order.append((now, key))
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO idempotency (key, fingerprint, status, body, saved_at) "
                             "VALUES (?, ?, ?, ?, ?)", (key, fingerprint, status, body, now))

    def prune(self) -> None:
        """Forget keys saved more than 24 hours ago."""
        order = self._order
        if not order:
            return
        cutoff = self._now() - KEEP_SECONDS
        if order[0][0] >= cutoff:
            return
        while order and order[0][0] < cutoff:
            saved_at, key = order.popleft()
            found = self._saved.get(key)
            if found is not None and found.saved_at == saved_at:  # not saved again since
                del self._saved[key]
        if self._db is not None:
            self._db.execute("DELETE FROM idempotency WHERE saved_at < ?", (cutoff,))

    def __len__(self) -> int:
        return len(self._saved)
