"""Settings of one sandbox instance (command-line flags or environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

API_VERSION = "2026-10-28.endive"


def _delays_from_env(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return tuple(float(x) for x in raw.split(",") if x.strip())


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 12111
    public_url: str | None = None  # base of hosted pages; defaults to http://host:port
    data_path: str | None = None
    webhook_url: str | None = field(default_factory=lambda: os.environ.get("STRIPE_SANDBOX_WEBHOOK_URL"))
    webhook_secret: str | None = field(default_factory=lambda: os.environ.get("STRIPE_SANDBOX_WEBHOOK_SECRET"))
    # Stripe retries failed deliveries for days; the sandbox compresses that schedule to seconds.
    webhook_retry_delays: tuple[float, ...] = field(
        default_factory=lambda: _delays_from_env("STRIPE_SANDBOX_WEBHOOK_RETRY_DELAYS", (1.0, 4.0, 16.0)))
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 16
    # How long "processing" payment methods (SEPA, ACH, Bacs) take to settle, in sandbox seconds.
    async_settle_seconds: float = field(
        default_factory=lambda: float(os.environ.get("STRIPE_SANDBOX_SETTLE_SECONDS", "3")))
    subscription_retry_days: tuple[float, ...] = (3.0, 5.0, 7.0)  # failed renewal retried N days after the first try
    # Keep the cyclic GC off stored objects (see store.GcFreezer): on in a process of the sandbox's own.
    freeze_gc: bool = False

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
