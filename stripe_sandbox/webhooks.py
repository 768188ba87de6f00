"""Delivery of events to webhook endpoints: signed POSTs, retried with backoff, every attempt recorded.

Deliveries run on background tasks and never block the API request that caused the event. A delivery
that gets no 2xx within the timeout is retried after each delay of ``webhook_retry_delays`` in turn.

As at Stripe, each endpoint is served on its own: it has a queue and up to ``webhook_concurrency`` workers of
its own (started when a delivery arrives, ended when its queue is empty), so an endpoint that hangs or is down
delays only its own deliveries. Its queue is first in, first out, so its events go out in the order they
happened (answers may still arrive out of order, up to ``webhook_concurrency`` at a time).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
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


@dataclass
class _Job:
    event_id: str
    endpoint_id: str
    attempt: int
    born: float  # wall time the event was queued, for each attempt's delay_ms
    resend: bool = False  # resends do not count towards the event's pending_webhooks


@dataclass
class _Lane:
    """One endpoint's deliveries waiting to go out and the workers sending them."""
    queue: deque[_Job] = field(default_factory=deque)
    workers: set[asyncio.Task[None]] = field(default_factory=set)
    in_flight: int = 0


class Deliverer:
    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.attempts: list[Attempt] = []
        # attempts by event id and by endpoint id, so that filtered reads do not scan every attempt
        self._by_event: dict[str, list[Attempt]] = {}
        self._by_endpoint: dict[str, list[Attempt]] = {}
        self._ids = itertools.count(1)
        self._lanes: dict[str, _Lane] = {}  # by endpoint id, only while it has deliveries queued or on the wire
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.paused = False  # control API: hold deliveries (a webhook outage)
        self._held: list[_Job] = []
        self._retries: dict[asyncio.TimerHandle, str] = {}  # retry waiting for its time -> endpoint id
        self.in_flight = 0

    # -- endpoint secrets live beside the store: the API shows a secret only once, on create --------
    # kv "endpoint_secrets": endpoint id -> secrets, newest first; kv "endpoint_secret_expiry":
    # endpoint id -> {secret: sandbox time after which it no longer signs} (rolled secrets only).
    def secrets_of(self, endpoint_id: str) -> list[str]:
        kv = self.sb.store.kv
        secrets = kv.get("endpoint_secrets", {}).get(endpoint_id, [])
        expiry = kv.get("endpoint_secret_expiry", {}).get(endpoint_id)
        if not expiry:
            return list(secrets)
        now = self.sb.clock.now()
        return [s for s in secrets if expiry.get(s, now + 1) > now]

    def set_secrets(self, endpoint_id: str, secrets: list[str]) -> None:
        table = dict(self.sb.store.kv.get("endpoint_secrets", {}))
        table[endpoint_id] = secrets
        self.sb.store.set_kv("endpoint_secrets", table)
        self._set_expiry(endpoint_id, None)

    def roll_secret(self, endpoint_id: str, new_secret: str, expire_old_after: float) -> None:
        """Sign with ``new_secret`` from now on, and with the still-live old ones for ``expire_old_after`` s."""
        old = self.secrets_of(endpoint_id)
        table = dict(self.sb.store.kv.get("endpoint_secrets", {}))
        table[endpoint_id] = [new_secret, *old] if expire_old_after > 0 else [new_secret]
        self.sb.store.set_kv("endpoint_secrets", table)
        previous = self.sb.store.kv.get("endpoint_secret_expiry", {}).get(endpoint_id) or {}
        deadline = self.sb.clock.now() + expire_old_after
        # an older secret that was already expiring keeps its earlier deadline
        expiry = {s: min(previous.get(s, deadline), deadline) for s in old} if expire_old_after > 0 else {}
        self._set_expiry(endpoint_id, expiry or None)

    def forget_endpoint(self, endpoint_id: str) -> None:
        table = dict(self.sb.store.kv.get("endpoint_secrets", {}))
        if table.pop(endpoint_id, None) is not None:
            self.sb.store.set_kv("endpoint_secrets", table)
        self._set_expiry(endpoint_id, None)
        self._drop_waiting(endpoint_id)

    def _drop_waiting(self, endpoint_id: str) -> None:
        """Forget the endpoint's deliveries not yet on the wire (those on it end with their answer or timeout)."""
        lane = self._lanes.get(endpoint_id)
        if lane is not None:
            lane.queue.clear()
        self._held = [job for job in self._held if job.endpoint_id != endpoint_id]
        for handle in [h for h, endpoint in self._retries.items() if endpoint == endpoint_id]:
            handle.cancel()
            del self._retries[handle]

    def _set_expiry(self, endpoint_id: str, expiry: dict[str, float] | None) -> None:
        table = dict(self.sb.store.kv.get("endpoint_secret_expiry", {}))
        if expiry is None and endpoint_id not in table:
            return
        if expiry is None:
            del table[endpoint_id]
        else:
            table[endpoint_id] = expiry
        self.sb.store.set_kv("endpoint_secret_expiry", table)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # No pool-wide connection cap: it would let hung endpoints take every connection. The lanes bound
        # connections to webhook_concurrency per endpoint.
        self._client = httpx.AsyncClient(timeout=self.sb.config.webhook_timeout,
                                         limits=httpx.Limits(max_connections=None, max_keepalive_connections=32))

    async def stop(self) -> None:
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        workers = [task for lane in self._lanes.values() for task in lane.workers]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._lanes.clear()
        self._loop = None
        if self._client:
            await self._client.aclose()

    def clear(self) -> None:
        """Forget every attempt and every delivery not yet made (the control API's reset)."""
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        self._held.clear()
        for lane in self._lanes.values():
            lane.queue.clear()
        self.attempts.clear()
        self._by_event.clear()
        self._by_endpoint.clear()

    # -- queueing ----------------------------------------------------------------------------------
    def enqueue(self, event: Obj) -> None:
        endpoints = [e for e in self._endpoints() if matches(e, event["type"])]
        event["pending_webhooks"] = len(endpoints)
        born = time.time()
        for endpoint in endpoints:
            self._submit(_Job(event["id"], endpoint["id"], 1, born))

    def resend(self, event_id: str, endpoint_id: str) -> None:
        self._submit(_Job(event_id, endpoint_id, 1, time.time(), resend=True))

    def _endpoints(self) -> list[Obj]:
        store = self.sb.store
        return [store.objects[i] for i in store.collection("webhook_endpoint").ids]

    def _submit(self, job: _Job) -> None:
        if self.paused:
            self._held.append(job)
            return
        if self._loop is None:  # not started, or stopped
            return
        lane = self._lanes.get(job.endpoint_id)
        if lane is None:
            lane = self._lanes[job.endpoint_id] = _Lane()
        lane.queue.append(job)
        # a worker not on the wire is about to take the next job; start one more if the queue outgrows them
        if len(lane.workers) < self.sb.config.webhook_concurrency \
                and len(lane.queue) > len(lane.workers) - lane.in_flight:
            lane.workers.add(self._loop.create_task(self._work(job.endpoint_id, lane)))

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        held, self._held = self._held, []
        for job in held:
            self._submit(job)

    def _retry_later(self, job: _Job) -> None:
        delays = self.sb.config.webhook_retry_delays
        if job.attempt > len(delays):
            return
        retry = _Job(job.event_id, job.endpoint_id, job.attempt + 1, job.born, job.resend)
        assert self._loop is not None

        def submit() -> None:
            self._retries.pop(handle, None)
            self._submit(retry)

        handle = self._loop.call_later(delays[job.attempt - 1], submit)
        self._retries[handle] = job.endpoint_id

    def idle(self) -> bool:
        """No delivery queued or on the wire (held ones and retries waiting for their time excepted)."""
        return self.in_flight == 0 and not any(lane.queue for lane in self._lanes.values())

    def waiting(self) -> dict[str, int]:
        queued = sum(len(lane.queue) for lane in self._lanes.values())
        return {"queued": queued, "in_flight": self.in_flight,
                "held": len(self._held), "retries_scheduled": len(self._retries)}

    def attempts_for(self, event: str | None = None, endpoint: str | None = None) -> list[Attempt]:
        if event is not None:
            found = self._by_event.get(event, [])
            return [a for a in found if endpoint is None or a.endpoint == endpoint]
        if endpoint is not None:
            return list(self._by_endpoint.get(endpoint, []))
        return list(self.attempts)

    def _record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self._by_event.setdefault(attempt.event, []).append(attempt)
        self._by_endpoint.setdefault(attempt.endpoint, []).append(attempt)

    # -- sending -----------------------------------------------------------------------------------
    async def _work(self, endpoint_id: str, lane: _Lane) -> None:
        """Send the endpoint's queued deliveries, oldest first, until none is left."""
        try:
            while lane.queue:
                job = lane.queue.popleft()
                lane.in_flight += 1
                self.in_flight += 1
                try:
                    await self._deliver(job)
                except Exception:
                    log.exception("webhook delivery crashed")
                finally:
                    lane.in_flight -= 1
                    self.in_flight -= 1
        finally:
            # at once, not in a done callback: until then _submit would count this worker as about to take a job
            me = asyncio.current_task()
            assert me is not None
            lane.workers.discard(me)
            if not lane.workers and not lane.queue and self._lanes.get(endpoint_id) is lane:
                del self._lanes[endpoint_id]

    async def _deliver(self, job: _Job) -> None:
        store = self.sb.store
        event = store.get(job.event_id)
        endpoint = store.get(job.endpoint_id)
        # a deleted or disabled endpoint gets nothing more, retries included
        if event is None or endpoint is None or endpoint.get("status") != "enabled":
            return
        payload = orjson.dumps(event, option=orjson.OPT_INDENT_2)
        # Each attempt is signed afresh, with the secrets live at that moment.
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
        attempt.delay_ms = (time.time() - job.born) * 1000
        self._record(attempt)
        if attempt.succeeded:
            if not job.resend and event.get("pending_webhooks", 0) > 0 and store.get(event["id"]) is event:
                event["pending_webhooks"] -= 1
                store.save(event)
        else:
            self._retry_later(job)
