"""The billing engine behind subscriptions, invoices, discounts and test clocks.

Resource modules (``resources/subscriptions.py`` ...) parse requests and call into this package; the package
owns the rules: billing periods, proration, invoice assembly and payment, dunning and the timeline of work
that falls due as a clock moves (the sandbox clock, or a test clock's frozen time).

Three resource modules it calls in turn, by name at the top of the module that needs them: PaymentIntents
(``invoicing`` pays an invoice through them), prices (``changes`` looks up a price an update names) and
subscriptions (``schedule_start`` starts a schedule's subscription through ``POST /v1/subscriptions``).
A subscription update itself lives here (``subscription_params``, ``subscription_updates``), so that a schedule
entering a phase mid-period runs the same code as the API.
"""

from __future__ import annotations

from ..store import INDEXED_FIELDS

# Where an invoice names its subscription (the API version has no top-level ``invoice.subscription``).
SUBSCRIPTION_OF_INVOICE = "parent.subscription_details.subscription"

# Secondary indexes for the billing objects, so that per-customer, per-subscription and per-clock lists never
# scan the whole store. Registered here (at import, before any store is opened) to keep ``store.py`` generic.
INDEXED_FIELDS.update({
    "subscription": ("customer", "test_clock"),
    "subscription_item": ("subscription",),
    "invoice": ("customer", SUBSCRIPTION_OF_INVOICE),
    "invoiceitem": ("customer",),
    "invoice_payment": ("invoice",),
    "promotion_code": ("code",),
    "subscription_schedule": ("customer",),
})
# Deleting a test clock deletes its customers: find them without a scan.
if "test_clock" not in INDEXED_FIELDS.get("customer", ()):
    INDEXED_FIELDS["customer"] = (*INDEXED_FIELDS.get("customer", ()), "test_clock")
