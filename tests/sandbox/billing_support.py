"""Helpers shared by the billing tests: a customer on a fresh test clock with a card, a monthly price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from tests.stripe_shapes import assert_stripe_shape

T0 = 1767225600  # 2026-01-01 00:00:00 UTC


@dataclass
class Setup:
    client: stripe.StripeClient
    clock: Any
    customer: Any

    def price(self, amount: int, interval: str = "month", name: str = "Plan") -> Any:
        product = self.client.v1.products.create(params={"name": name})
        price = self.client.v1.prices.create(params={"product": product.id, "unit_amount": amount,
                                                     "currency": "usd", "recurring": {"interval": interval}})
        return price

    def advance(self, frozen_time: int) -> Any:
        clock = self.client.v1.test_helpers.test_clocks.advance(self.clock.id, params={"frozen_time": frozen_time})
        assert_stripe_shape(clock)
        return clock

    def subscription(self, sub_id: str) -> Any:
        sub = self.client.v1.subscriptions.retrieve(sub_id)
        assert_stripe_shape(sub)
        return sub

    def events(self) -> list[dict[str, Any]]:
        """This setup's events in the order the sandbox recorded them (webhooks may arrive in any order)."""
        out = []
        for event in self.client.v1.events.list(params={"limit": 100}).auto_paging_iter():
            obj = event.to_dict()["data"]["object"]
            if obj.get("customer") == self.customer.id or obj.get("id") in (self.customer.id, self.clock.id):
                out.append(event.to_dict())
            if event.type == "test_helpers.test_clock.created" and obj["id"] == self.clock.id:
                break
        return list(reversed(out))

    def types(self, *prefixes: str) -> list[str]:
        return [e["type"] for e in self.events() if e["type"].startswith(prefixes)]

    def invoices(self) -> list[Any]:
        page = self.client.v1.invoices.list(params={"customer": self.customer.id, "limit": 100})
        assert_stripe_shape(page)
        return list(reversed(page.data))  # oldest first


def setup(client: stripe.StripeClient, card: str | None = "pm_card_visa", frozen_time: int = T0) -> Setup:
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": frozen_time, "name": "billing"})
    assert_stripe_shape(clock)
    customer = client.v1.customers.create(params={"test_clock": clock.id, "email": "sub@example.com"})
    if card:
        pm = client.v1.payment_methods.attach(card, params={"customer": customer.id})
        customer = client.v1.customers.update(customer.id,
                                              params={"invoice_settings": {"default_payment_method": pm.id}})
    return Setup(client, clock, customer)


def prorated(amount: int, remaining: int, whole: int) -> int:
    """Stripe's proration, computed independently of the sandbox: amount x remaining / whole, half up."""
    from decimal import ROUND_HALF_UP, Decimal

    return int((Decimal(amount) * remaining / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP))
