"""Paying a Checkout Session in ``subscription`` mode, and completing it when the first invoice is paid.

The hosted page's payment attaches the card to the customer as their default payment method, creates the
subscription through the subscriptions module (``payment_behavior=default_incomplete``: the first invoice is
finalized with a PaymentIntent and not charged yet) and confirms that PaymentIntent on-session with the card,
so that 3-D Secure can redirect the payer. A decline leaves the subscription ``incomplete`` and the session
open; the next attempt pays the same invoice. The session completes when its invoice is paid, wherever that
happens (here, on the 3-D Secure page, or at once for a trial or a 100 % discount): after the invoice and
subscription events, as Stripe orders them.
"""

from __future__ import annotations

from typing import Any

from ..billing import invoicing
from ..errors import StripeError, invalid_request
from ..params import Params
from ..store import Obj
from . import subscriptions  # imports billing.renewal: its PAID listener runs before the one below
from .checkout_completion import complete
from .checkout_discounts import discount_params, recheck
from .checkout_records import extras
from .checkout_tax import located_customer
from .customers import update as update_customer
from .payment_intents import confirm_payment_intent
from .payment_methods import attach_to_customer

SESSION_OF_INVOICE = "checkout_invoice:{}"  # store.kv: first invoice id -> session id


def pay(sb: Any, session: Obj, customer_id: str, pm: Obj | None, return_url: str) -> Obj:
    """Subscribe the customer; returns the first invoice's PaymentIntent after confirmation (or a stand-in
    ``{"status": "succeeded"}`` when nothing was due). Raises the card_error of a decline."""
    customer = sb.store.objects[customer_id]
    recheck(sb, session, customer)
    if pm is not None:
        attach_to_customer(sb, pm["id"], customer)
        update_customer(sb, Params({"invoice_settings": {"default_payment_method": pm["id"]}}), customer_id)
    ex = extras(sb, session)
    taxed = located_customer(sb, session, customer)
    sub = _pending(sb, session, ex)
    if sub is None:
        sub = _create(sb, session, ex, customer_id, pm, taxed)
    elif pm is not None:
        subscriptions.update(sb, Params({"default_payment_method": pm["id"]}), sub["id"])
    invoice = sb.store.objects[sub["latest_invoice"]]
    sb.store.set_kv(SESSION_OF_INVOICE.format(invoice["id"]), session["id"])
    if invoice["status"] == "paid":  # a trial or a free first period: paid when it was finalized
        finish(sb, session, invoice)
        return {"status": "succeeded"}
    pi = invoicing.payment_intent_of(sb, invoice)
    if pm is None or pi is None:
        raise invalid_request("A card is needed to start this subscription.", param="payment_method")
    # Each try is an attempt on the invoice, as Stripe counts them (a first invoice is not retried).
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    sb.store.save(invoice)
    try:
        return confirm_payment_intent(sb, pi, pm["id"], return_url=return_url)
    except StripeError:
        invoicing.payment_failed(sb, invoice)
        raise


def first_invoice_intent(sb: Any, session: Obj) -> Obj | None:
    """The PaymentIntent of the session's first invoice (for the page after 3-D Secure)."""
    sub = _pending(sb, session, extras(sb, session))
    invoice = sb.store.get((sub or {}).get("latest_invoice") or "", "invoice")
    return invoicing.payment_intent_of(sb, invoice) if invoice else None


def _pending(sb: Any, session: Obj, ex: Obj) -> Obj | None:
    """The subscription an earlier, declined attempt created, if it still waits for its first payment
    at the session's current price (a code applied or removed since then makes it stale)."""
    sub = sb.store.get(ex.get("subscription") or "", "subscription")
    if sub is None or sub["status"] != "incomplete" or ex.get("subscription_discounts") != session["discounts"]:
        return None
    invoice = sb.store.get(sub["latest_invoice"] or "", "invoice")
    if invoice is None or invoice["status"] != "open":
        return None
    return sub


def _create(sb: Any, session: Obj, ex: Obj, customer_id: str, pm: Obj | None, taxed: bool) -> Obj:
    _replace_stale(sb, ex)
    params = _subscription_params(session, ex, customer_id, pm)
    if taxed:
        params["automatic_tax"] = {"enabled": "true"}
    # Prices made from ``price_data`` are archived (as Stripe makes them), and the subscriptions API only
    # takes active prices: they are active for the length of this call only.
    archived = [sb.store.objects[item["price"]] for item in ex["line_items"]
                if not sb.store.objects[item["price"]]["active"]]
    for price in archived:
        price["active"] = True
    try:
        sub = subscriptions.create(sb, Params(params))
    finally:
        for price in archived:
            price["active"] = False
    archived_ids = {price["id"] for price in archived}
    for item in sub["items"]["data"]:  # the items' copies of the price, too
        if item["price"]["id"] in archived_ids:
            item["price"]["active"] = item["plan"]["active"] = False
            sb.store.save(item)
    ex["subscription"] = sub["id"]
    ex["subscription_discounts"] = [dict(entry) for entry in session["discounts"]]
    sb.store.save(ex)
    return sub


def _replace_stale(sb: Any, ex: Obj) -> None:
    """An incomplete subscription of an earlier attempt whose price changed since: replaced, not reused."""
    stale = sb.store.get(ex.get("subscription") or "", "subscription")
    if stale is None or stale["status"] != "incomplete":
        return
    old = sb.store.get(stale["latest_invoice"] or "", "invoice")
    if old is not None and old["status"] == "open":
        invoicing.void(sb, old)
    subscriptions.cancel(sb, Params({}), stale["id"])


def _subscription_params(session: Obj, ex: Obj, customer_id: str, pm: Obj | None) -> dict[str, Any]:
    """``POST /v1/subscriptions`` parameters for what the session sells."""
    data = ex.get("subscription_data") or {}
    params: dict[str, Any] = {
        "customer": customer_id,
        "items": [{"price": item["price"], "quantity": str(item["quantity"])} for item in ex["line_items"]],
        "payment_behavior": "default_incomplete",
        "metadata": dict(data.get("metadata") or {}),
        "discounts": [entry.data for entry in discount_params(session)],
    }
    if pm is not None:
        params["default_payment_method"] = pm["id"]
    if data.get("description"):
        params["description"] = data["description"]
    if data.get("trial_end"):
        params["trial_end"] = str(data["trial_end"])
    elif data.get("trial_period_days"):
        params["trial_period_days"] = str(data["trial_period_days"])
    if data.get("trial_settings"):
        params["trial_settings"] = data["trial_settings"]
    return params


def finish(sb: Any, session: Obj, invoice: Obj) -> None:
    if session["status"] != "open":
        return
    session["subscription"] = invoicing.subscription_of(invoice)
    session["invoice"] = invoice["id"]
    session["customer"] = invoice["customer"]
    complete(sb, session, "paid" if invoice["amount_paid"] > 0 else "no_payment_required")


def _invoice_paid(sb: Any, invoice: Obj) -> None:
    session_id = sb.store.kv.get(SESSION_OF_INVOICE.format(invoice["id"]))
    session = sb.store.get(session_id or "", "checkout.session")
    if session is not None:
        finish(sb, session, invoice)


invoicing.PAID.append(_invoice_paid)
