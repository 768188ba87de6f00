"""Tax (``TALLY_TAX``): Stripe Tax's settings, set up for the offline sandbox at start-up."""
