"""An offline, stateful, Stripe-compatible API server with hosted Checkout and signed webhooks.

Point any Stripe SDK at it (API base ``http://127.0.0.1:12111``, any ``sk_test_`` key). It never
imports ``tally``.
"""

from .config import API_VERSION, SandboxConfig
from .server import SandboxServer

__all__ = ["API_VERSION", "SandboxConfig", "SandboxServer"]
