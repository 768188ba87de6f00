"""Reversals: Stripe refunds and disputes of payments Tally credited, and the credits they take back or give back."""
