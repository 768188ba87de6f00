"""``POST /_sandbox/trigger {"event": "customer.created"}``: make the state change that causes an event,
as ``stripe trigger`` does (it creates real objects, so the event's ``data.object`` is a real one).

Triggers go through the API's own route handlers, the interface every resource module keeps, so they stay
true to what a client would cause. Payment and Checkout triggers are registered only when those modules
are present.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .control import trigger
from .errors import StripeError, invalid_request
from .params import Params
from .routing import ROUTES
from .store import Obj

Data = dict[str, Any]


def _call(sb: Any, method: str, path: str, params: Data, **path_params: str) -> Obj:
    for r in ROUTES:
        if r.method == method and r.path == path:
            return r.handler(sb, Params(params), **path_params)
    raise invalid_request(f"This sandbox has no {method} {path} for the trigger.")


def _has(module: str) -> bool:
    return importlib.util.find_spec(f"{__package__}.resources.{module}") is not None


def _result(event_type: str, **objects: Obj) -> Data:
    return {"triggered": event_type, **{name: obj["id"] for name, obj in objects.items()}}


@trigger("customer.created")
def customer_created(sb: Any, data: Data) -> Data:
    customer = _call(sb, "POST", "/v1/customers", {"description": "(created by sandbox trigger)",
                                                   "email": data.get("email") or "trigger@example.com"})
    return _result("customer.created", customer=customer)


@trigger("product.created")
def product_created(sb: Any, data: Data) -> Data:
    product = _call(sb, "POST", "/v1/products", {"name": data.get("name") or "myproduct",
                                                 "description": "(created by sandbox trigger)"})
    return _result("product.created", product=product)


@trigger("price.created")
def price_created(sb: Any, data: Data) -> Data:
    product = _call(sb, "POST", "/v1/products", {"name": "myproduct", "description": "(created by sandbox trigger)"})
    price = _call(sb, "POST", "/v1/prices", {"product": product["id"], "currency": "usd", "unit_amount": "1500"})
    return _result("price.created", product=product, price=price)


def _payment_intent(sb: Any, payment_method: str) -> Obj:
    """A PaymentIntent confirmed at once; a decline leaves it failed (and its events made) rather than raising."""
    params = {"amount": "2000", "currency": "usd", "payment_method": payment_method,
              "payment_method_types": ["card"], "confirm": "true", "description": "(created by sandbox trigger)"}
    try:
        return _call(sb, "POST", "/v1/payment_intents", params)
    except StripeError as err:
        if err.status != 402 or "payment_intent" not in err.body:
            raise
        pi = err.body["payment_intent"]
        return pi if isinstance(pi, dict) else sb.store.get(pi)


if _has("payment_intents"):

    @trigger("payment_intent.succeeded")
    def payment_intent_succeeded(sb: Any, data: Data) -> Data:
        return _result("payment_intent.succeeded", payment_intent=_payment_intent(sb, "pm_card_visa"))

    @trigger("payment_intent.payment_failed")
    def payment_intent_payment_failed(sb: Any, data: Data) -> Data:
        pi = _payment_intent(sb, "pm_card_visa_chargeDeclined")
        return _result("payment_intent.payment_failed", payment_intent=pi)

    if _has("disputes"):

        @trigger("charge.dispute.created")
        def charge_dispute_created(sb: Any, data: Data) -> Data:
            pi = _payment_intent(sb, "pm_card_createDispute")
            return _result("charge.dispute.created", payment_intent=pi)

    if _has("refunds"):

        @trigger("charge.refunded")
        def charge_refunded(sb: Any, data: Data) -> Data:
            pi = _payment_intent(sb, "pm_card_visa")
            refund = _call(sb, "POST", "/v1/refunds", {"payment_intent": pi["id"]})
            return _result("charge.refunded", payment_intent=pi, refund=refund)

if _has("checkout_sessions") and _has("checkout_flow") and _has("payment_intents"):
    from .resources import checkout_flow

    @trigger("checkout.session.completed")
    def checkout_session_completed(sb: Any, data: Data) -> Data:
        session = _call(sb, "POST", "/v1/checkout/sessions", {
            "mode": "payment",
            "success_url": "https://example.com/success",
            "cancel_url": "https://example.com/cancel",
            "line_items": [{"quantity": "1", "price_data": {
                "currency": "usd", "unit_amount": "3000", "product_data": {"name": "T-shirt"}}}],
        })
        card = checkout_flow.Card(email="trigger@example.com", name="Jenny Rosen", number="4242424242424242",
                                  exp_month=12, exp_year=2034, cvc="123")
        checkout_flow.pay(sb, session, card)
        return _result("checkout.session.completed", checkout_session=sb.store.get(session["id"]))
