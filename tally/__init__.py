"""Tally: sell credits and subscriptions through Stripe, with an exactly-once credits ledger."""

__version__ = "0.1.0"
