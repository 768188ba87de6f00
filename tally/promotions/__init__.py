"""Promotion codes: Stripe coupons and the codes buyers type on Checkout (``tally promo``, ``/admin/promotions``)."""
