"""Outgoing email: SMTP when ``TALLY_SMTP_URL`` is set, else caught in the outbox table and shown on ``/outbox``."""
