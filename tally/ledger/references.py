"""The reference of every kind of ledger movement, built in one place.

A ledger transaction's ``reference`` is unique (a database constraint): it is what makes each movement
happen exactly once, whoever asks for it and however often. Writers build references here and so does
``tally ledger check``; nobody spells them out by hand. Stripe's ids (``in_…``, ``re_…``, ``dp_…``) are
unique across accounts' objects, so they key their movements on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """``ledger_transactions.kind``: what moved the credits."""

    PURCHASE = "purchase"  # a paid pack
    SUBSCRIPTION = "subscription"  # a paid subscription invoice, or an upgrade's prorated credits
    PROMOTION = "promotion"  # a promotional grant by the operator
    ADJUSTMENT = "adjustment"  # the operator's correction, up or down
    SPEND = "spend"  # a spend, or a hold's capture
    REFUND = "refund"  # credits taken back for a Stripe refund
    DISPUTE = "dispute"  # credits taken back for a chargeback
    REINSTATEMENT = "reinstatement"  # credits given back when a dispute is won
    EXPIRY = "expiry"  # what was left of a grant at its expiry
    ROLLOVER = "rollover"  # a subscription's unused credits carried into its next period


def order_purchase(order_id: str) -> str:
    return f"order:{order_id}:purchase"


def invoice_grant(invoice_id: str) -> str:
    return f"invoice:{invoice_id}:grant"


def subscription_change_grant(change_id: str) -> str:
    return f"subscription_change:{change_id}:grant"


def refund(refund_id: str) -> str:
    """A Stripe refund of a pack or of a subscription invoice."""
    return f"refund:{refund_id}"


def dispute_withdrawal(dispute_id: str) -> str:
    return f"dispute:{dispute_id}:withdrawn"


def dispute_reinstatement(dispute_id: str) -> str:
    return f"dispute:{dispute_id}:reinstated"


def spend(user_id: str, idempotency_key: str) -> str:
    return f"spend:{user_id}:{idempotency_key}"


def hold_capture(hold_id: str) -> str:
    return f"hold:{hold_id}:capture"


def hold_expiry(hold_id: str) -> str:
    """Credits a hold gave back to grants that had expired meanwhile."""
    return f"hold:{hold_id}:expiry"


def grant_expiry(grant_id: int) -> str:
    return f"grant:{grant_id}:expiry"


def rollover(subscription_id: str, period_end: int) -> str:
    """The carry-over of a subscription's unused credits at the end of the period ending at ``period_end``."""
    return f"rollover:{subscription_id}:{period_end}"


def promotion(user_id: str, key: str) -> str:
    return f"promotion:{user_id}:{key}"


def adjustment(user_id: str, key: str) -> str:
    return f"adjustment:{user_id}:{key}"


def sql_expression(builder: Callable[[Any], str], column: str) -> str:
    """The SQL expression that builds ``builder``'s reference from ``column`` (for ``tally ledger check``, so
    its queries match references exactly as the writers build them)."""
    marker = "\x00"
    prefix, suffix = builder(marker).split(marker)
    parts = [f"'{prefix}'" if prefix else "", f"{column}::text", f"'{suffix}'" if suffix else ""]
    return " || ".join(p for p in parts if p)
