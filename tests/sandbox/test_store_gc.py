"""``SandboxConfig.freeze_gc`` (the command line's setting): stored objects leave the cyclic GC's reach."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stripe_sandbox.store import GcFreezer, Store


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # give this test process its objects back


def test_objects_are_frozen_every_few_thousand_adds(unfrozen: None) -> None:
    gc.unfreeze()
    store = Store(freeze_gc=True)
    assert gc.get_freeze_count() > 0  # what was alive at start-up (a --data file's objects included)
    gc.unfreeze()
    every = GcFreezer().every
    for i in range(every - 1):
        store.add({"id": f"cus_{i}", "object": "customer", "email": f"{i}@example.com", "metadata": {}})
    assert gc.get_freeze_count() == 0
    store.add({"id": "cus_last", "object": "customer", "email": None, "metadata": {}})
    assert gc.get_freeze_count() >= every  # the stored dicts (and their metadata dicts) are frozen
    assert store.get("cus_last") is not None and len(store.collection("customer")) == every


def test_off_by_default(unfrozen: None) -> None:
    gc.unfreeze()
    store = Store()
    for i in range(GcFreezer().every + 1):
        store.add({"id": f"cus_{i}", "object": "customer", "metadata": {}})
    assert gc.get_freeze_count() == 0
