"""The order service routes call: checkout (``checkout``) and an order's status (``reading``).

The rest of the domain has modules of its own, one job each: ``repository`` (finding and locking an order),
``state`` (Stripe state → order state), ``fulfilment`` (where a payment becomes credits), ``events`` (the webhook
entry points), ``refunds``, ``intents`` (orders paid by a PaymentIntent of their own)."""

from .checkout import CheckoutStarted, create_checkout
from .reading import OrderStatus, get_order_status

__all__ = ["CheckoutStarted", "OrderStatus", "create_checkout", "get_order_status"]
