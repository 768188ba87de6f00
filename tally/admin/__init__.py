"""Operator dashboard at /admin: revenue, payment and webhook health, MRR movement, failed events, orders."""
