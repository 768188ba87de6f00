"""Subscriptions: plans synced to Stripe, subscription Checkout, lifecycle webhooks, renewal credit grants,
change/cancel/resume, the billing portal link and dunning."""
