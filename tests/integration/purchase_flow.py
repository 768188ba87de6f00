"""Helpers for purchase tests: buy through Tally's API, pay on the sandbox's hosted Checkout page exactly
as a browser posts its form, and wait for the webhook-driven outcome by polling the order."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import stripe

from tally.db import libpq_url
from tests.waiting import poll, sql_at

# stripe 16's async HTTPXClient posts bytes with ``data=``, which httpx deprecates; pytest turns that
# warning into an error *inside the SDK call*, which the SDK reports as a network error. Harmless in
# production (a printed warning); ignored for these tests. (pyproject's filterwarnings is the better home.)
STRIPE_HTTPX_WARNING = "ignore:Use 'content=:DeprecationWarning"

VISA = "4242424242424242"
DECLINED = "4000000000000002"


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def checkout(client: httpx.Client, pack_id: str = "starter") -> dict[str, Any]:
    response = client.post("/v1/checkout", json={"pack_id": pack_id})
    assert response.status_code == 200, response.text
    return response.json()


def pay(tally: Any, session_id: str, card: str = VISA, email: str = "buyer@example.com") -> httpx.Response:
    """Submit the hosted Checkout form (what the browser would POST)."""
    with httpx.Client(base_url=tally.sandbox.url, timeout=30) as page:
        return page.post(f"/c/pay/{session_id}", data={
            "email": email, "cardNumber": card, "cardExpiry": "12 / 34", "country": "US", "cardCvc": "123",
            "billingName": "Ada Lovelace"})


def sdk(tally: Any) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_tally_sandbox", base_addresses={"api": tally.sandbox.url},
                               max_network_retries=0)


def sql(tally: Any, query: str, *args: Any) -> list[tuple[Any, ...]]:
    return sql_at(tally.database_url, query, *args)


def wait_until(predicate: Any, what: str, timeout: float = 15.0) -> Any:
    return poll(predicate, timeout=timeout, what=what, every=0.05)


def processed_events(tally: Any, object_id: str) -> list[tuple[str, str]]:
    """(type, status) of the inbox events about ``object_id``."""
    return [tuple(r) for r in sql(tally, "SELECT type, status FROM webhook_events "
                                         "WHERE payload->'data'->'object'->>'id' = %s", object_id)]


def wait_processed(tally: Any, object_id: str, event_type: str, timeout: float = 15.0) -> None:
    wait_until(lambda: (event_type, "processed") in processed_events(tally, object_id),
               f"{event_type} of {object_id} processed", timeout)


def order_row(tally: Any, order_id: str) -> dict[str, Any]:
    with psycopg.connect(libpq_url(tally.database_url), autocommit=True) as conn:
        cur = conn.execute("SELECT * FROM orders WHERE id = %s", (order_id,))
        row = cur.fetchone()
        assert row is not None
        return dict(zip([c.name for c in cur.description], row, strict=True))  # type: ignore[union-attr]


# -- PaymentIntent orders (issue 4) ---------------------------------------------------------------------
def authorize(redirect_url: str, action: str = "complete") -> httpx.Response:
    """Open the bank's/wallet's page from ``next_action`` and press one of its two buttons, as a browser
    does: GET the page, then POST its form (token from the page's hidden field)."""
    import re

    with httpx.Client(timeout=30) as browser:
        page = browser.get(redirect_url)
        assert page.status_code == 200, page.text
        assert "Authorize test payment" in page.text or "Complete authentication" in page.text
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        action_url = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert token and action_url
        return browser.post(httpx.URL(redirect_url).join(action_url.group(1)),
                            data={"token": token.group(1), "action": action})


def advance_sandbox_clock(tally: Any, seconds: float) -> None:
    """Move the sandbox's time forward: bank debits due by then settle (and send their webhooks)."""
    response = httpx.post(f"{tally.sandbox.url}/_sandbox/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
