"""The one package that talks to Stripe (the only importer of the ``stripe`` SDK in Tally).

- ``StripeGateway`` (``make_client``): named async calls (``retrieve_payment_intent``,
  ``create_checkout_session``, ``list_events``, …) carrying the idempotency key, the expansions and the
  client's timeouts and retries; they answer plain dicts. Caches of Stripe data are the gateway's, bounded.
- ``idempotency_key`` / ``update_key``: keys derived from Tally's own record ids.
- ``stripe_call`` and the SDK's error classes under their own names (``InvalidRequestError``, …).
- ``object_id``: the id of a related object, expanded or not.
- ``ensure_product``: a product Tally names itself, created or put back as the catalog says.
- ``verify_signature``: the webhook signature check on the raw body.

With no Stripe key configured the same gateway points at the offline sandbox that ``tally serve`` starts;
nothing else in Tally knows the difference.
"""

from .errors import (APIConnectionError, APIError, AuthenticationError, CardError, InvalidRequestError,
                     PermissionError, RateLimitError, SignatureVerificationError, StripeError, is_missing,
                     stripe_call)
from .gateway import API_VERSION, SANDBOX_KEY, StripeGateway, close_client, make_client
from .ids import object_id
from .keys import idempotency_key, update_key
from .products import ensure_product
from .signature import verify_signature
from .transport import StripeTransport

__all__ = [
    "API_VERSION", "SANDBOX_KEY", "APIConnectionError", "APIError", "AuthenticationError", "CardError",
    "InvalidRequestError", "PermissionError", "RateLimitError", "SignatureVerificationError", "StripeError",
    "StripeGateway", "StripeTransport", "close_client", "ensure_product", "idempotency_key", "is_missing", "make_client",
    "object_id", "stripe_call", "update_key", "verify_signature",
]
