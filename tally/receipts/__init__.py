"""Receipts and notices to buyers: a paid order, a refund, a paid renewal; queued in the email outbox once
per event, in the buyer's language."""
