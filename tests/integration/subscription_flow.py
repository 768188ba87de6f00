"""Helpers for subscription tests on the sandbox's test clocks.

Tally creates a user's Stripe customer itself, but a customer can join a test clock only when it is created.
So a clock test creates the clock and the customer through the SDK first and links a Tally user to that
customer by inserting the ``users`` row with ``stripe_customer_id`` (plain SQL, as an app migrating existing
customers would). No dev-only route is needed for this."""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import stripe

from tally.stripe_gateway import make_client
from tally.subscriptions.plans import plan_book, sync_plans
from tests.integration.purchase_flow import new_user, pay, sdk, sql, wait_until

T0 = 1767225600  # 2026-01-01 00:00:00 UTC
DAY = 86400


def add_months(t: int, months: int) -> int:
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def plan_prices(tally: Any) -> dict[str, str]:
    """lookup key → price id of Tally's plans in the test's sandbox (synced once per sandbox)."""
    cached = getattr(tally, "_plan_prices", None)
    if cached is None:
        client = make_client("sk_test_tally_sandbox", tally.sandbox.url)
        cached = asyncio.run(sync_plans(client, plan_book(tally.settings)))
        tally._plan_prices = cached
    return cached


@dataclass
class ClockUser:
    tally: Any
    user_id: str
    email: str
    clock_id: str
    customer_id: str
    stripe: stripe.StripeClient
    now: int

    def client(self) -> httpx.Client:
        return self.tally.client(self.user_id, self.email)

    def subscribe(self, plan: str = "basic", interval: str = "month", **params: Any) -> dict[str, Any]:
        price = plan_prices(self.tally)[f"plan:{plan}:{interval}"]
        sub = self.stripe.v1.subscriptions.create(params={
            "customer": self.customer_id, "items": [{"price": price}], **params})
        return sub.to_dict()

    def advance(self, frozen_time: int) -> None:
        self.stripe.v1.test_helpers.test_clocks.advance(self.clock_id, params={"frozen_time": frozen_time})
        self.now = frozen_time

    def use_card(self, payment_method: str) -> str:
        pm = self.stripe.v1.payment_methods.attach(payment_method, params={"customer": self.customer_id})
        self.stripe.v1.customers.update(self.customer_id, params={
            "invoice_settings": {"default_payment_method": pm.id}})
        return pm.id

    def balance(self) -> int:
        with self.client() as c:
            return int(c.get("/v1/credits").json()["balance"])

    def subscription(self) -> dict[str, Any]:
        with self.client() as c:
            response = c.get("/v1/subscription")
            assert response.status_code == 200, response.text
            return response.json()

    def wait_balance(self, expected: int, timeout: float = 20) -> None:
        wait_until(lambda: self.balance() == expected, f"balance {expected} (now {self.balance()})", timeout)

    def wait_subscription(self, what: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        return wait_until(lambda: (lambda s: s if predicate(s) else None)(self.subscription()),
                          f"{what} (now {self.subscription()})", timeout)

    def invoices(self) -> list[dict[str, Any]]:
        page = self.stripe.v1.invoices.list(params={"customer": self.customer_id, "limit": 100})
        return [i.to_dict() for i in reversed(page.data)]  # oldest first

    def recorded_invoices(self) -> list[tuple[Any, ...]]:
        return sql(self.tally, "SELECT id, billing_reason, amount_paid, credits FROM subscription_invoices "
                               "WHERE user_id = %s ORDER BY period_start NULLS FIRST, created_at", self.user_id)

    def outbox(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.tally.admin_client() as admin:
            rows = admin.get("/v1/admin/outbox", params={"to": self.email}).json()["data"]
        return [r for r in rows if kind is None or r["kind"] == kind]

    def checkout(self, plan: str = "basic", interval: str = "month") -> dict[str, Any]:
        """Subscribe the way a user does: Tally's subscription Checkout, paid on the sandbox's hosted page."""
        with self.client() as c:
            response = c.post("/v1/subscriptions/checkout", json={"plan_id": plan, "interval": interval})
            assert response.status_code == 200, response.text
            started = response.json()
        paid = pay(self.tally, started["session_id"], email=self.email)
        assert paid.status_code in (200, 303), paid.text
        return started

    def stripe_subscription(self) -> dict[str, Any]:
        state = self.subscription()
        assert state["id"], state
        return self.stripe.v1.subscriptions.retrieve(state["id"]).to_dict()

    def portal(self) -> str:
        """A billing portal session on Tally's configuration, as ``Manage billing`` opens it."""
        with self.client() as c:
            response = c.post("/v1/portal")
            assert response.status_code == 200, response.text
            return str(response.json()["url"])

    def portal_switch(self, plan: str, interval: str = "month") -> httpx.Response:
        """Pick another plan on the hosted portal page (the form a browser posts)."""
        url, sub = self.portal(), self.stripe_subscription()
        price = plan_prices(self.tally)[f"plan:{plan}:{interval}"]
        page = httpx.get(f"{url}/subscriptions/{sub['id']}/update")
        assert page.status_code == 200 and f'value="{price}"' in page.text, page.text
        return httpx.post(f"{url}/subscriptions/{sub['id']}/update", data={"price": price})

    def idle(self, timeout: float = 20) -> None:
        """Wait until the sandbox delivered everything and Tally processed every new event and every one of this
        customer's. Another test's event that is failing on purpose, pending between its retries with backoff
        (a minute in all), is not this test's to wait for: counting it made this wait time out when such a test
        ran shortly before."""
        def deliveries() -> tuple[bool, int]:
            state = httpx.get(f"{self.tally.sandbox.url}/_sandbox/deliveries").json()
            return bool(state["pending"]), len(state["data"])

        def settled() -> bool:
            # The sandbox idle before and after Tally's inbox was read, with no delivery made in between: what
            # the inbox showed is all there is (a delivery stored and processed between the reads is seen).
            before = deliveries()
            waiting = sql(self.tally, "SELECT count(*) FROM webhook_events WHERE status = 'pending' "
                                      "AND (attempts = 0 OR position(%s in payload::text) > 0)", self.customer_id)
            return not before[0] and waiting[0][0] == 0 and deliveries() == before
        wait_until(settled, "webhooks delivered and processed", timeout)


def clock_user(tally: Any, card: str | None = "pm_card_visa", frozen_time: int = T0) -> ClockUser:
    client = sdk(tally)
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": frozen_time, "name": "tally"})
    user_id = new_user()
    email = f"{user_id}@example.com"
    customer = client.v1.customers.create(params={"test_clock": clock.id, "email": email,
                                                  "metadata": {"user_id": user_id}})
    sql(tally, "INSERT INTO users (id, email, stripe_customer_id) VALUES (%s, %s, %s)", user_id, email, customer.id)
    user = ClockUser(tally, user_id, email, clock.id, customer.id, client, frozen_time)
    if card:
        user.use_card(card)
    return user
