"""Looking up a stored customer: below ``customers`` (whose create attaches a payment method) and the payment
modules (which check the customer they are given), so that neither side imports the other's routes."""

from __future__ import annotations

from typing import Any

from ..errors import no_such
from ..store import Obj


def get_customer(sb: Any, customer_id: str, param: str = "customer") -> Obj:
    customer = sb.store.get(customer_id, "customer")
    if customer is None or customer.get("deleted"):
        raise no_such("customer", customer_id, param)
    return customer
