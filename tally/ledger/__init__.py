"""The credits ledger: the only code that writes ledger rows, grants, holds and wallet balances.

Public surface (everything else here is private to the package; ``tests/unit/test_ledger_boundary.py`` fails
when a module outside it imports a private name or writes its tables):
- ``references``: the reference of each kind of movement (unique: each movement happens once);
- ``posting.post``: one balanced transaction, exactly once per reference; ``Movement``;
- ``credits``: every rule of credits in and out (packs, subscription and proration grants, promotions,
  adjustments, refund and dispute reversals, reinstatements) and the draw order;
- ``spending``: spends and holds (capture, release, expiry of holds);
- ``expiry``: lapsed grants and subscription rollover;
- ``operator``: the operator's grants and adjustments (the admin API and ``tally credits``);
- ``service``: reading balances, grants and transactions; ``check``: ``tally ledger check``.
"""
