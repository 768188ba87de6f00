"""Which payment methods a currency offers, and the rules every order and Checkout Session obeys.

The catalog file's ``[payment_methods]`` table sets the list per currency; a currency it leaves out gets
``DEFAULT_METHODS`` (the methods customers in that currency's markets use), and an unknown currency gets
cards only. The rules are Stripe's, checked here so a buyer gets a clear 400 from Tally instead of a
Stripe error half-way through paying:

- one order, like one Checkout Session, has one currency, and only that currency's methods;
- Alipay, GrabPay, FPX and PayNow cannot be saved for later charges, so they are refused for recurring
  prices (subscriptions);
- Sofort no longer exists (Stripe retired it in 2025): a catalog or a request naming it is refused with
  that reason, so nobody debugs a generic "invalid type" error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CARD = "card"

DEFAULT_METHODS: Mapping[str, tuple[str, ...]] = {
    "myr": ("card", "fpx", "grabpay", "alipay"),
    "usd": ("card", "us_bank_account", "alipay"),
    "eur": ("card", "sepa_debit", "ideal", "bancontact"),
    "gbp": ("card", "bacs_debit"),
    "sgd": ("card", "grabpay", "paynow"),
}
# Stripe: these can pay once but can never be reused off-session, so a subscription cannot run on them.
ONE_TIME_ONLY = frozenset({"alipay", "grabpay", "fpx", "paynow"})
# The customer authorises on the bank's or wallet's page: confirmed with ``payment_method_data[type]`` and a
# ``return_url``; no PaymentMethod needs to exist first.
REDIRECT_METHODS = frozenset({"alipay", "bancontact", "fpx", "grabpay", "ideal", "klarna", "p24", "paynow"})
# Bank debits: the PaymentIntent is ``processing`` for days; the order stays pending until it settles. Their
# confirmation needs the customer's acceptance of a mandate (Stripe refuses a server-side confirm without it).
DELAYED_METHODS = frozenset({"sepa_debit", "us_bank_account", "bacs_debit"})
RETIRED_METHODS: Mapping[str, str] = {
    "sofort": "Sofort no longer exists: Stripe retired it in 2025. Offer another method instead "
              "(for EUR: card, sepa_debit, ideal or bancontact).",
}


class PaymentMethodError(ValueError):
    """A payment method that this currency or price cannot use; the message says what is allowed."""

    def __init__(self, message: str, *, param: str = "payment_method_types") -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def methods_for(configured: Mapping[str, list[str]], currency: str, *, recurring: bool = False) -> list[str]:
    """The methods offered for ``currency`` (lower-case), in the configured order; for a recurring price,
    without the one-time-only ones."""
    methods = list(configured.get(currency) or DEFAULT_METHODS.get(currency) or (CARD,))
    return [m for m in methods if m not in ONE_TIME_ONLY] if recurring else methods


def retired_reason(method: str) -> str | None:
    return RETIRED_METHODS.get(method.strip().lower())


def check_methods(configured: Mapping[str, list[str]], currency: str, requested: Iterable[str], *,
                  recurring: bool = False, param: str = "payment_method_types") -> list[str]:
    """``requested`` if every one is allowed for this currency (and price kind), deduplicated in order;
    otherwise ``PaymentMethodError`` naming the allowed ones."""
    allowed = methods_for(configured, currency, recurring=False)
    chosen = list(dict.fromkeys(m.strip().lower() for m in requested))
    if not chosen:
        raise PaymentMethodError("Name at least one payment method type.", param=param)
    for method in chosen:
        reason = retired_reason(method)
        if reason:
            raise PaymentMethodError(reason, param=param)
        if recurring and method in ONE_TIME_ONLY:
            raise PaymentMethodError(
                f"{method} can only pay once and cannot be used for a recurring price; allowed for recurring "
                f"{currency.upper()} prices: {', '.join(methods_for(configured, currency, recurring=True))}.",
                param=param)
        if method not in allowed:
            raise PaymentMethodError(
                f"{method} is not offered for {currency.upper()}; allowed: {', '.join(allowed)}.", param=param)
    return chosen
