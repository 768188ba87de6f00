"""Delivery of events to webhook endpoints: signed POSTs, retried with backoff, every attempt recorded.

Deliveries run on background tasks and never block the API request that caused the event. A delivery
that gets no 2xx within the timeout is retried after each delay of ``webhook_retry_delays`` in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson

from . import signing
from .store import Obj

log = logging.getLogger("stripe_sandbox.webhooks")


def matches(endpoint: Obj, event_type: str) -> bool:
    if endpoint.get("status") != "enabled":
        return False
    enabled = endpoint.get("enabled_events") or []
    return "*" in enabled or event_type in enabled


@dataclass
class Attempt:
    id: int
    event: str
    event_type: str
    endpoint: str
    url: str
    attempt: int
    created: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None
    delay_ms: float | None = None  # from the event's creation to this attempt's answer
    succeeded: bool = False
    response_body: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(order=True)
class _Job:
    event_id: str = field(compare=False)
    endpoint_id: str = field(compare=False)
    attempt: int = field(compare=False)


class Deliverer:
    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.attempts: list[Attempt] = []
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[_Job] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.paused = False  # control API: hold deliveries (a webhook outage)
        self._held: list[_Job] = []
        self.in_flight = 0
        self._born: dict[str, float] = {}  # event id -> wall time it was queued, for delivery latency

    # -- endpoint secrets live beside the store: the API shows a secret only once, on create --------
    def secrets_of(self, endpoint_id: str) -> list[str]:
        return list(self.sb.store.kv.get("endpoint_secrets", {}).get(endpoint_id, []))

    def set_secrets(self, endpoint_id: str, secrets: list[str]) -> None:
        table = dict(self.sb.store.kv.get("endpoint_secrets", {}))
        table[endpoint_id] = secrets
        self.sb.store.set_kv("endpoint_secrets", table)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=self.sb.config.webhook_timeout,
                                         limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.sb.config.webhook_concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client:
            await self._client.aclose()

    # -- queueing ----------------------------------------------------------------------------------
    def enqueue(self, event: Obj) -> None:
        endpoints = [e for e in self._endpoints() if matches(e, event["type"])]
        event["pending_webhooks"] = len(endpoints)
        self._born[event["id"]] = time.time()
        for endpoint in endpoints:
            self._submit(_Job(event["id"], endpoint["id"], 1))

    def resend(self, event_id: str, endpoint_id: str) -> None:
        self._submit(_Job(event_id, endpoint_id, 1))

    def _endpoints(self) -> list[Obj]:
        store = self.sb.store
        return [store.objects[i] for i in store.collection("webhook_endpoint").ids]

    def _submit(self, job: _Job) -> None:
        if self.paused:
            self._held.append(job)
        elif self._queue is not None:
            self._queue.put_nowait(job)

    def resume(self) -> None:
        self.paused = False
        held, self._held = self._held, []
        for job in held:
            self._submit(job)

    def _retry_later(self, job: _Job) -> None:
        delays = self.sb.config.webhook_retry_delays
        if job.attempt > len(delays):
            return
        retry = _Job(job.event_id, job.endpoint_id, job.attempt + 1)
        assert self._loop is not None
        self._loop.call_later(delays[job.attempt - 1], self._submit, retry)

    def idle(self) -> bool:
        return (self._queue is None or self._queue.empty()) and self.in_flight == 0

    # -- sending -----------------------------------------------------------------------------------
    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            self.in_flight += 1
            try:
                await self._deliver(job)
            except Exception:
                log.exception("webhook delivery crashed")
            finally:
                self.in_flight -= 1

    async def _deliver(self, job: _Job) -> None:
        store = self.sb.store
        event = store.get(job.event_id)
        endpoint = store.get(job.endpoint_id)
        if event is None or endpoint is None or endpoint.get("status") != "enabled":
            return
        payload = orjson.dumps(event, option=orjson.OPT_INDENT_2)
        timestamp = self.sb.clock.now_int()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signing.header(self.secrets_of(endpoint["id"]), timestamp, payload),
        }
        attempt = Attempt(next(self._ids), event["id"], event["type"], endpoint["id"], endpoint["url"],
                          job.attempt, time.time())
        started = time.perf_counter()
        try:
            assert self._client is not None
            response = await self._client.post(endpoint["url"], content=payload, headers=headers)
            attempt.status_code = response.status_code
            attempt.response_body = response.text[:1000]
            attempt.succeeded = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        attempt.duration_ms = (time.perf_counter() - started) * 1000
        born = self._born.get(event["id"])
        if born is not None:
            attempt.delay_ms = (time.time() - born) * 1000
        self.attempts.append(attempt)
        if attempt.succeeded:
            if event.get("pending_webhooks", 0) > 0 and job.attempt >= 1:
                event["pending_webhooks"] -= 1
                store.save(event)
        else:
            self._retry_later(job)
