"""In-memory object store with ordered, indexed collections; optionally written through to SQLite.

Every object is a plain dict as the API returns it (nested objects as ids). Each object type has a
collection ordered by creation, and types may declare secondary indexes on a field (e.g. a customer's
``email``) so that filtered lists stay O(log n + page) however large the store grows.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

# object type -> fields with a secondary index
INDEXED_FIELDS: dict[str, tuple[str, ...]] = {
    "customer": ("email",),
    "price": ("lookup_key", "product"),
    "checkout.session": ("payment_intent", "customer"),
    "payment_intent": ("customer",),
    "payment_method": ("customer",),
    "charge": ("payment_intent", "customer"),
    "refund": ("charge", "payment_intent"),
    "dispute": ("charge", "payment_intent"),
    "event": ("type",),
}


class GcFreezer:
    """Keeps Python's cyclic garbage collector off the store's objects, in a sandbox running in its own process.

    Stored objects are acyclic JSON-like dicts that reference counting frees; the cyclic collector finds
    nothing in them, yet a full collection walks every one, and with a large store that takes long enough to be
    seen (no request is answered and no webhook leaves meanwhile; bench/sandbox.py measures it). ``gc.freeze()`` moves every
    live object to the permanent generation, which collections skip; done after loading ``--data`` and after
    every ``every`` objects added, full collections only walk what came since. The price: a reference cycle
    alive at a freeze that dies later is never collected (asyncio and uvicorn keep a few per connection, some
    kilobytes per freeze), so only the command line turns it on (``SandboxConfig.freeze_gc``), not a sandbox
    inside a test process or ``tally serve``.
    """

    def __init__(self, every: int = 5_000) -> None:
        self.every = every
        self.pending = 0

    def added(self) -> None:
        self.pending += 1
        if self.pending >= self.every:
            self.freeze()

    def freeze(self) -> None:
        self.pending = 0
        gc.freeze()


def field_value(obj: Obj, path: str) -> Any:
    """The value at a dotted path (``parent.subscription_details.subscription``), None where a step is missing."""
    value: Any = obj
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


@dataclass
class Collection:
    """Ids ordered by creation sequence; supports newest-first pagination with cursors."""

    keys: list[int] = field(default_factory=list)  # sequence numbers, ascending
    ids: list[str] = field(default_factory=list)

    def add(self, seq: int, object_id: str) -> None:
        i = bisect.bisect_left(self.keys, seq)
        self.keys.insert(i, seq)
        self.ids.insert(i, object_id)

    def remove(self, seq: int) -> None:
        i = bisect.bisect_left(self.keys, seq)
        if i < len(self.keys) and self.keys[i] == seq:
            del self.keys[i]
            del self.ids[i]

    def __len__(self) -> int:
        return len(self.ids)

    def newest_first(self, before_seq: int | None = None) -> Iterator[str]:
        """Ids older than ``before_seq`` (starting_after), newest first."""
        hi = len(self.keys) if before_seq is None else bisect.bisect_left(self.keys, before_seq)
        for i in range(hi - 1, -1, -1):
            yield self.ids[i]

    def oldest_first_after(self, after_seq: int) -> Iterator[str]:
        """Ids newer than ``after_seq`` (ending_before), oldest first."""
        lo = bisect.bisect_right(self.keys, after_seq)
        for i in range(lo, len(self.keys)):
            yield self.ids[i]


class Store:
    def __init__(self, path: str | None = None, freeze_gc: bool = False) -> None:
        self.objects: dict[str, Obj] = {}
        self.seq_of: dict[str, int] = {}
        self.type_of: dict[str, str] = {}
        self.collections: dict[str, Collection] = {}
        self.indexes: dict[tuple[str, str, Any], Collection] = {}
        self._indexed_values: dict[tuple[str, str], Any] = {}
        self._seq = itertools.count(1)
        self.kv: dict[str, Any] = {}  # sandbox bookkeeping that is not an API object
        self._db: sqlite3.Connection | None = None
        self._freezer = GcFreezer() if freeze_gc else None
        if path:
            self._open(path)
        if self._freezer is not None:
            self._freezer.freeze()

    # -- persistence -------------------------------------------------------------------------
    def _open(self, path: str) -> None:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, seq INTEGER, type TEXT, body TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, body TEXT)")
        rows = db.execute("SELECT id, seq, type, body FROM objects ORDER BY seq").fetchall()
        last = 0
        for object_id, seq, type_, body in rows:
            self._install(json.loads(body), seq, type_)
            last = max(last, seq)
        self._seq = itertools.count(last + 1)
        for key, body in db.execute("SELECT key, body FROM kv"):
            self.kv[key] = json.loads(body)
        self._db = db

    def _write(self, obj: Obj) -> None:
        if self._db is not None:
            object_id = obj["id"]
            self._db.execute(
                "INSERT OR REPLACE INTO objects (id, seq, type, body) VALUES (?, ?, ?, ?)",
                (object_id, self.seq_of[object_id], self.type_of[object_id], json.dumps(obj)),
            )

    @property
    def db(self) -> sqlite3.Connection | None:
        """The SQLite file behind the store (``--data``), for other bookkeeping kept beside the objects."""
        return self._db

    def set_kv(self, key: str, value: Any) -> None:
        self.kv[key] = value
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO kv (key, body) VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- objects -----------------------------------------------------------------------------
    def _install(self, obj: Obj, seq: int, type_: str) -> None:
        object_id = obj["id"]
        self.objects[object_id] = obj
        self.seq_of[object_id] = seq
        self.type_of[object_id] = type_
        self.collections.setdefault(type_, Collection()).add(seq, object_id)
        self._reindex(obj, type_)

    def _reindex(self, obj: Obj, type_: str) -> None:
        object_id = obj["id"]
        seq = self.seq_of[object_id]
        for name in INDEXED_FIELDS.get(type_, ()):
            value = field_value(obj, name)
            if isinstance(value, dict):
                value = value.get("id")
            slot = (object_id, name)
            old = self._indexed_values.get(slot, None)
            if slot in self._indexed_values and old == value:
                continue
            if slot in self._indexed_values and old is not None:
                self.indexes[(type_, name, old)].remove(seq)
            self._indexed_values[slot] = value
            if value is not None:
                self.indexes.setdefault((type_, name, value), Collection()).add(seq, object_id)

    def add(self, obj: Obj, type_: str | None = None) -> Obj:
        type_ = type_ or obj["object"]
        self._install(obj, next(self._seq), type_)
        self._write(obj)
        if self._freezer is not None:
            self._freezer.added()
        return obj

    def save(self, obj: Obj) -> Obj:
        """Record changes made to a stored object in place."""
        self._reindex(obj, self.type_of[obj["id"]])
        self._write(obj)
        return obj

    def get(self, object_id: str, type_: str | None = None) -> Obj | None:
        obj = self.objects.get(object_id)
        if obj is None or (type_ is not None and self.type_of[object_id] != type_):
            return None
        return obj

    def delete(self, object_id: str) -> None:
        type_ = self.type_of.pop(object_id)
        seq = self.seq_of.pop(object_id)
        self.objects.pop(object_id)
        self.collections[type_].remove(seq)
        for name in INDEXED_FIELDS.get(type_, ()):
            value = self._indexed_values.pop((object_id, name), None)
            if value is not None:
                self.indexes[(type_, name, value)].remove(seq)
        if self._db is not None:
            self._db.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    def collection(self, type_: str, field_name: str | None = None, value: Any = None) -> Collection:
        if field_name is None:
            return self.collections.get(type_) or Collection()
        if field_name not in INDEXED_FIELDS.get(type_, ()):
            raise KeyError(f"{type_}.{field_name} has no index")
        return self.indexes.get((type_, field_name, value)) or Collection()

    def count(self) -> int:
        return len(self.objects)
