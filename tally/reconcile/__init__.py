"""Reconciliation with Stripe: events that never arrived, and paid objects the ledger does not show."""
