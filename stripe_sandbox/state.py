"""One sandbox: its store, clock, scheduler and webhook deliverer, shared by every request."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .clock import Clock
from .config import API_VERSION, SandboxConfig
from .faults import Faults
from .idempotency import IdempotencyKeys
from .scheduler import Scheduler
from .store import Store
from .webhooks import Deliverer


@dataclass
class RequestInfo:
    request_id: str
    idempotency_key: str | None
    api_version: str


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.api_version = API_VERSION
        self.store = Store(config.data_path, config.freeze_gc)
        self.clock = Clock()
        self.clock.offset = float(self.store.kv.get("clock_offset", 0.0))
        self.scheduler = Scheduler(self)
        self.webhooks = Deliverer(self)
        # The request being handled, for the ``request`` field of the events it causes. Handlers run
        # without awaiting, so one request at a time sets this.
        self.current_request: RequestInfo | None = None
        self.idempotent = IdempotencyKeys(self.clock.now, self.store.db)  # saved answers, kept 24 h
        self.faults = Faults()  # injected API failures (control API, fault tests)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.store.set_kv("clock_offset", self.clock.offset)
        self.scheduler.run_due()

    def reset(self) -> None:
        """Forget every object, event and delivery (the control API's reset)."""
        self.store.close()
        if self.config.data_path:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.config.data_path + suffix):
                    os.remove(self.config.data_path + suffix)
        self.store = Store(self.config.data_path, self.config.freeze_gc)
        self.clock.offset = 0.0
        self.scheduler.clear()
        self.webhooks.clear()
        self.idempotent = IdempotencyKeys(self.clock.now, self.store.db)
        self.faults.clear()
