"""Price changes for existing subscribers (``tally plans migrate``): each moves at its first renewal on or after
the effective date, through a Stripe subscription schedule, after a notice email."""
