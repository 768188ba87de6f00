"""A real HTTP endpoint for tests: receives the sandbox's webhooks and verifies them with the SDK.

>>> with WebhookReceiver() as receiver:
...     endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
...     receiver.secret = endpoint.secret
...     event = receiver.wait_for("customer.created")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import stripe


class WebhookReceiver:
    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.events: list[dict[str, Any]] = []  # verified events, in arrival order
        self.rejected: list[str] = []  # why deliveries were refused
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []  # raw bodies of verified deliveries, beside ``headers``
        # status to answer next, for retry tests: a callable(event) -> status
        self.answer: Callable[[dict[str, Any]], int] = lambda event: 200
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signature = self.headers.get("Stripe-Signature", "")
                try:
                    assert receiver.secret, "receiver has no secret yet"
                    stripe.Webhook.construct_event(body, signature, receiver.secret)
                except Exception as exc:  # a refused delivery is data for the test
                    with receiver._cond:
                        receiver.rejected.append(f"{type(exc).__name__}: {exc}")
                        receiver._cond.notify_all()
                    self.send_response(400)
                    self.end_headers()
                    return
                event = json.loads(body)
                status = receiver.answer(event)
                with receiver._cond:
                    receiver.headers.append(dict(self.headers))
                    receiver.bodies.append(body)
                    if 200 <= status < 300:
                        receiver.events.append(event)
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"received": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["type"] == event_type]

    def wait_for(self, event_type: str, timeout: float = 10.0,
                 where: Callable[[dict[str, Any]], bool] = lambda e: True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event["type"] == event_type and where(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [e["type"] for e in self.events]
                    raise AssertionError(f"no {event_type} within {timeout}s; received {seen}")
                self._cond.wait(remaining)
