"""Every table, imported in one place so that Alembic and tests see the whole schema."""

from __future__ import annotations

import importlib

from .db import Base

# Each domain's models module registers its tables on Base.metadata when imported.
for _domain in ("customers", "webhooks", "catalog", "orders", "ledger", "invoices", "subscriptions", "email",
                "reconcile", "reversals", "price_changes"):
    try:
        importlib.import_module(f"tally.{_domain}.models")
    except ModuleNotFoundError as exc:
        if exc.name != f"tally.{_domain}.models" and exc.name != f"tally.{_domain}":
            raise

metadata = Base.metadata
