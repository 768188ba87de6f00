"""Stripe-like ids: a prefix and random base62 characters.

Object ids need to be unique, not secret: they come from a generator seeded once from the OS, one call per
id (``secrets.choice`` per character cost a system call each, a fifth of a PaymentIntent's server time).
Secrets (``whsec_``, client secrets) still come from ``secrets``.
"""

from __future__ import annotations

import os
import random
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_rng = random.Random(os.urandom(32))


def _reseed_after_fork() -> None:
    # a forked child must not repeat its parent's ids
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{''.join(_rng.choices(_ALPHABET, k=length))}"


def new_secret(prefix: str, length: int = 32) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"
