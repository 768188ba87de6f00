"""``tally doctor`` and ``/admin/health``: a running Tally and its Stripe account, scored out of 8."""
