"""The shape-checking SDK client fails the call that receives a body Stripe would not send."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from tests.stripe_shapes import checked_client, fixtures


@contextmanager
def answering(body: dict[str, Any], status: int = 200) -> Iterator[str]:
    """A server that answers every request with ``body``: a stand-in for a sandbox with a shape bug."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stripe_shaped_body_passes() -> None:
    with answering(fixtures()["customer"]) as url:
        assert checked_client(url).v1.customers.retrieve("cus_x").object == "customer"


def test_a_missing_key_fails_the_call() -> None:
    customer = {k: v for k, v in fixtures()["customer"].items() if k != "invoice_settings"}
    with answering(customer) as url, pytest.raises(AssertionError, match="invoice_settings"):
        checked_client(url).v1.customers.retrieve("cus_x")


def test_a_wrong_type_inside_a_list_item_fails_the_call() -> None:
    page = {"object": "list", "url": "/v1/customers", "has_more": False,
            "data": [{**fixtures()["customer"], "balance": "0"}]}
    with answering(page) as url, pytest.raises(AssertionError, match="balance"):
        checked_client(url).v1.customers.list()


def test_an_expanded_object_is_checked_with_its_own_keys() -> None:
    intent = {**fixtures()["payment_intent"], "customer": {"id": "cus_x", "object": "customer"}}
    with answering(intent) as url, pytest.raises(AssertionError, match="customer lacks"):
        checked_client(url).v1.payment_intents.retrieve("pi_x", params={"expand": ["customer"]})


def test_error_bodies_are_left_to_the_sdk() -> None:
    error = {"error": {"type": "invalid_request_error", "message": "No such customer", "code": "resource_missing"}}
    with answering(error, status=404) as url, pytest.raises(stripe.InvalidRequestError):
        checked_client(url).v1.customers.retrieve("cus_missing")
