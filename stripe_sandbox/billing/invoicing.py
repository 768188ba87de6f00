"""Invoices: assembly (lines, discounts, totals), finalization, payment, void and uncollectible.

An invoice is stored with all its lines embedded (``lines.data``); lines are not objects of their own.
Payment goes through the PaymentIntent engine (``resources/payment_intents.py``): finalizing an invoice that
charges automatically creates its PaymentIntent (so a client can confirm it, as with
``payment_behavior=default_incomplete``), and each attempt confirms it off-session with the default payment
method. Whoever confirms it, the invoice learns of success through ``hooks.on_payment_intent_changed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import hooks
from ..errors import StripeError, state_error
from ..events import emit
from ..ids import new_id
from ..resources.payment_intents import confirm_payment_intent, new_payment_intent
from ..store import Obj
from . import invoice_tax
from .discounts import amount_off, discount_coupon
from .time import DAY, clock_of, now_for

# Stripe finalizes an automatically advancing draft about an hour after creating it.
FINALIZE_DELAY = 3600

# Called with (sandbox, invoice) when an invoice of a subscription is paid, fails, is voided...; the
# subscription engine registers here, so that this module does not import it.
PAID: list[Callable[[Any, Obj], None]] = []
FAILED: list[Callable[[Any, Obj], None]] = []


def get(sb: Any, invoice_id: str) -> Obj | None:
    return sb.store.get(invoice_id, "invoice")


def subscription_of(invoice: Obj) -> str | None:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription")


# long: one literal, the invoice object in Stripe's field order; split up, the shape would be scattered.
def new_invoice(sb: Any, customer: Obj, *, currency: str, billing_reason: str, subscription: Obj | None = None,
                collection_method: str = "charge_automatically", auto_advance: bool = True,
                days_until_due: int | None = None, description: str | None = None,
                metadata: dict[str, str] | None = None, default_payment_method: str | None = None,
                discounts: list[str] | None = None, period: tuple[int, int] | None = None,
                automatic_tax: Obj | None = None) -> Obj:
    """A draft invoice with no lines yet (``add_line``, then ``refresh_totals``)."""
    now = now_for(sb, customer)
    clock = clock_of(sb, customer)
    start, end = period or (now, now)
    address = customer.get("address") or {k: None for k in ("city", "country", "line1", "line2", "postal_code",
                                                            "state")}
    invoice: Obj = {
        "id": new_id("in", 24),
        "object": "invoice",
        "account_country": "US",
        "account_name": "Stripe Sandbox",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": invoice_tax.for_invoice(automatic_tax),
        "automatically_finalizes_at": now + FINALIZE_DELAY if auto_advance else None,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": address,
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [],
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": list(discounts or []),
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": (customer.get("invoice_settings") or {}).get("footer"),
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "url": ""},
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": clock["id"] if clock else None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
    if collection_method == "send_invoice":
        invoice["due_date"] = now + DAY * (days_until_due if days_until_due is not None else 30)
    if subscription is not None:
        invoice["parent"] = {"quote_details": None, "type": "subscription_details", "subscription_details": {
            "metadata": dict(subscription.get("metadata") or {}), "subscription": subscription["id"],
            "subscription_proration_date": None}}
    return invoice


def line(invoice_id: str | None, *, amount: int, currency: str, description: str, period: tuple[int, int],
         quantity: int, price: Obj | None, subscription: str | None, subscription_item: str | None = None,
         invoice_item: str | None = None, proration: bool = False, discountable: bool = True,
         metadata: dict[str, str] | None = None, unit_amount_decimal: str | None = None) -> Obj:
    """An invoice line; from a subscription item when ``invoice_item`` is None, else from an invoice item."""
    details = {"invoice_item": invoice_item, "proration": proration,
               "proration_details": {"credited_items": None}, "subscription": subscription}
    if invoice_item is None:
        parent = {"type": "subscription_item_details", "invoice_item_details": None,
                  "subscription_item_details": {**details, "subscription_item": subscription_item}}
    else:
        parent = {"type": "invoice_item_details", "subscription_item_details": None,
                  "invoice_item_details": details}
    if unit_amount_decimal is None and price is not None:
        unit_amount_decimal = price.get("unit_amount_decimal")
    return {
        "id": new_id("il", 24),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": discountable,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "parent": parent,
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {"type": "price_details", "unit_amount_decimal": unit_amount_decimal,
                    "price_details": {"price": price["id"], "product": price["product"]} if price else None},
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription,
        "subtotal": amount,
        "taxes": [],
    }


ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                          "vuv", "xaf", "xof", "xpf"})


def money(amount: int, currency: str) -> str:
    """``2000, "usd"`` -> ``$20.00`` (for descriptions and the hosted page; no locale rules)."""
    currency = currency.lower()
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}.get(currency, currency.upper() + " ")
    sign = "-" if amount < 0 else ""
    if currency in ZERO_DECIMAL:
        return f"{sign}{symbol}{abs(amount):,}"
    return f"{sign}{symbol}{abs(amount) / 100:,.2f}"


def interval_text(price: Obj) -> str:
    recurring = price.get("recurring") or {}
    count, interval = recurring.get("interval_count", 1), recurring.get("interval", "")
    return f"{interval}" if count == 1 else f"{count} {interval}s"


def item_description(sb: Any, price: Obj, quantity: int) -> str:
    product = sb.store.get(price["product"]) or {}
    amount = money(price.get("unit_amount") or 0, price["currency"])
    return f"{quantity} × {product.get('name', price['product'])} (at {amount} / {interval_text(price)})"


def active_discounts(sb: Any, discount_ids: list[str], when: int) -> list[Obj]:
    out = []
    for discount_id in discount_ids:
        discount = sb.store.get(discount_id, "discount")
        if discount is None or discount["start"] > when or (discount["end"] is not None and when >= discount["end"]):
            continue
        out.append(discount)
    return out


def refresh_totals(sb: Any, invoice: Obj) -> None:
    """Apply the invoice's discounts to its lines and recompute every total, automatic tax included (drafts
    only)."""
    lines = invoice["lines"]["data"]
    for item in lines:
        item["discount_amounts"] = []
    taken: dict[str, int] = {item["id"]: 0 for item in lines}
    totals: list[dict[str, Any]] = []
    for discount in active_discounts(sb, invoice["discounts"], invoice["created"]):
        shares = _discount_shares(discount_coupon(sb, discount), invoice, taken)
        if shares is None:
            continue
        for item in lines:
            share = shares.get(item["id"], 0)
            item["discount_amounts"].append({"amount": share, "discount": discount["id"]})
            taken[item["id"]] += share
        totals.append({"amount": sum(shares.values()), "discount": discount["id"]})
    subtotal = sum(i["amount"] for i in lines)
    discount_total = sum(t["amount"] for t in totals)
    invoice["subtotal"] = invoice["subtotal_excluding_tax"] = subtotal
    invoice["total"] = invoice["total_excluding_tax"] = subtotal - discount_total
    invoice["total_discount_amounts"] = totals
    invoice["amount_due"] = max(0, invoice["total"] + invoice["starting_balance"])
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    invoice_tax.apply(sb, invoice)


def _discount_shares(coupon: Obj, invoice: Obj, taken: dict[str, int]) -> dict[str, int] | None:
    """What the coupon takes off each discountable line, after what earlier discounts ``taken``: a percentage of
    each, or an amount spread over them; None for an amount in another currency (it does not apply)."""
    lines = invoice["lines"]["data"]
    eligible = [i for i in lines if i["discountable"] and i["amount"] - taken[i["id"]] > 0]
    if coupon["percent_off"] is not None:
        return {i["id"]: amount_off(coupon, i["amount"] - taken[i["id"]]) for i in eligible}
    if coupon["currency"] != invoice["currency"]:
        return None
    base = sum(i["amount"] - taken[i["id"]] for i in eligible)
    off = amount_off(coupon, base)
    return _spread(off, [(i["id"], i["amount"] - taken[i["id"]]) for i in eligible])


def _spread(total: int, weights: list[tuple[str, int]]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights``, largest remainders first, so the parts add up."""
    whole = sum(w for _, w in weights)
    if whole <= 0 or total <= 0:
        return {}
    exact = [(key, total * w / whole) for key, w in weights]
    parts = {key: int(share) for key, share in exact}
    left = total - sum(parts.values())
    for key, share in sorted(exact, key=lambda e: e[1] - int(e[1]), reverse=True)[:left]:
        parts[key] += 1
    return parts


def save_new(sb: Any, invoice: Obj) -> Obj:
    """Store a freshly assembled draft and announce it."""
    refresh_totals(sb, invoice)
    sb.store.add(invoice)
    emit(sb, "invoice.created", invoice)
    return invoice


def finalize(sb: Any, invoice: Obj) -> None:
    """Draft → open: number, hosted page and PDF, customer balance applied, PaymentIntent for automatic
    collection; ``invoice.finalized`` (and ``invoice.paid`` at once when nothing is due)."""
    if invoice["status"] != "draft":
        raise state_error("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
    customer = sb.store.get(invoice["customer"], "customer")
    now = now_for(sb, invoice)
    refresh_totals(sb, invoice)
    if customer is not None:
        _apply_balance(sb, invoice, customer)
        sequence = int(customer.get("next_invoice_sequence") or 1)
        invoice["number"] = f"{customer.get('invoice_prefix') or 'SANDBOX'}-{sequence:04d}"
        customer["next_invoice_sequence"] = sequence + 1
        sb.store.save(customer)
    base = sb.base_url
    invoice["hosted_invoice_url"] = f"{base}/invoice/{invoice['id']}"
    invoice["invoice_pdf"] = f"{base}/invoice/{invoice['id']}/pdf"
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = now
    invoice["effective_at"] = now
    invoice["automatically_finalizes_at"] = None
    invoice["webhooks_delivered_at"] = now
    if invoice["collection_method"] == "charge_automatically" and invoice["amount_due"] > 0:
        _create_payment(sb, invoice, customer)
    sb.store.save(invoice)
    emit(sb, "invoice.finalized", invoice)
    if invoice["amount_due"] == 0:
        mark_paid(sb, invoice)


def _apply_balance(sb: Any, invoice: Obj, customer: Obj) -> None:
    """Use the customer's credit balance (negative) or debt (positive); a negative total becomes credit."""
    balance = int(customer.get("balance") or 0)
    invoice["starting_balance"] = balance
    net = invoice["total"] + balance
    invoice["amount_due"] = max(0, net)
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    invoice["ending_balance"] = min(0, net)
    if invoice["ending_balance"] != balance:
        customer["balance"] = invoice["ending_balance"]
        emit(sb, "customer.updated", customer, {"balance": balance})


def _create_payment(sb: Any, invoice: Obj, customer: Obj | None) -> None:
    description = {"subscription_create": "Subscription creation", "subscription_cycle": "Subscription update",
                   "subscription_update": "Subscription update"}.get(invoice["billing_reason"] or "", "Invoice")
    pi = new_payment_intent(sb, amount=invoice["amount_due"], currency=invoice["currency"],
                            customer=invoice["customer"], description=description,
                            payment_method_types=["card"])
    sb.store.set_kv(f"pi_invoice:{pi['id']}", invoice["id"])
    payment: Obj = {
        "id": new_id("inpay", 24),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": invoice["amount_due"],
        "created": now_for(sb, invoice),
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": pi["id"], "charge": None, "payment_record": None},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }
    sb.store.add(payment)


def default_payment(sb: Any, invoice: Obj) -> Obj | None:
    ids = sb.store.collection("invoice_payment", "invoice", invoice["id"]).ids
    for payment_id in reversed(ids):
        payment = sb.store.objects[payment_id]
        if payment["is_default"]:
            return payment
    return None


def payment_intent_of(sb: Any, invoice: Obj) -> Obj | None:
    payment = default_payment(sb, invoice)
    if payment is None or payment["payment"]["payment_intent"] is None:
        return None
    return sb.store.get(payment["payment"]["payment_intent"], "payment_intent")


def payment_method_for(sb: Any, invoice: Obj) -> str | None:
    """The invoice's, else its subscription's, else the customer's default payment method."""
    if invoice.get("default_payment_method"):
        return invoice["default_payment_method"]
    sub_id = subscription_of(invoice)
    if sub_id:
        sub = sb.store.get(sub_id, "subscription")
        if sub and sub.get("default_payment_method"):
            return sub["default_payment_method"]
    customer = sb.store.get(invoice["customer"], "customer")
    if customer:
        return (customer.get("invoice_settings") or {}).get("default_payment_method")
    return None


def attempt_payment(sb: Any, invoice: Obj, payment_method: str | None = None, *,
                    off_session: bool = True) -> StripeError | None:
    """One collection attempt; returns the decline (after recording it) or None once the invoice is paid."""
    if invoice["status"] != "open":
        raise state_error("Invoice is already paid" if invoice["status"] == "paid"
                          else f"You cannot pay an invoice with status {invoice['status']}.")
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if invoice["amount_remaining"] <= 0:
        mark_paid(sb, invoice)
        return None
    error = _charge(sb, invoice, payment_method or payment_method_for(sb, invoice), off_session)
    if error is None:
        error = _settle(sb, invoice)
    if error is not None:
        payment_failed(sb, invoice)
    return error


def _charge(sb: Any, invoice: Obj, pm_id: str | None, off_session: bool) -> StripeError | None:
    """Confirm the invoice's PaymentIntent with ``pm_id``; the decline, if any."""
    pi = payment_intent_of(sb, invoice)
    if pm_id is None or pi is None:
        return StripeError(402, "invalid_request_error",
                           "This customer has no attached payment source or default payment method. Please "
                           "consider adding a default payment method.", code="invoice_no_payment_method_types")
    try:
        confirm_payment_intent(sb, pi, pm_id, off_session=off_session)
    except StripeError as err:
        return err
    return None


def _settle(sb: Any, invoice: Obj) -> StripeError | None:
    """After a confirmation that did not fail: paid, processing (paid later through the PaymentIntent hook), or
    waiting for the customer to authenticate (an error for an off-session attempt)."""
    pi = payment_intent_of(sb, invoice)
    if pi is not None and pi["status"] == "succeeded" and invoice["status"] != "paid":
        mark_paid(sb, invoice)
    elif pi is not None and pi["status"] == "processing":
        sb.store.save(invoice)
    elif invoice["status"] != "paid":
        return StripeError(402, "card_error", "This payment requires additional user action.",
                           code="authentication_required")
    return None


def payment_failed(sb: Any, invoice: Obj) -> None:
    invoice["next_payment_attempt"] = next_attempt(sb, invoice)
    sb.store.save(invoice)
    emit(sb, "invoice.payment_failed", invoice)
    for listener in FAILED:  # the subscription engine: past_due, the retry timer, or giving up
        listener(sb, invoice)


def next_attempt(sb: Any, invoice: Obj) -> int | None:
    """Smart-Retries-like: a subscription's invoice is retried ``subscription_retry_days`` days after its
    first failed attempt (3, 5 and 7 by default); None once they are spent, or for other invoices."""
    if subscription_of(invoice) is None or invoice["collection_method"] != "charge_automatically" \
            or invoice["billing_reason"] == "subscription_create":  # a first invoice is not retried
        return None
    key = f"first_failure:{invoice['id']}"
    first = sb.store.kv.get(key)
    if first is None:
        first = now_for(sb, invoice)
        sb.store.set_kv(key, first)
    days = sb.config.subscription_retry_days
    retry = invoice["attempt_count"] - 1  # retries already made
    if retry >= len(days):
        return None
    return int(first + days[retry] * DAY)


def mark_paid(sb: Any, invoice: Obj, *, out_of_band: bool = False) -> None:
    if invoice["status"] == "paid":
        return
    now = now_for(sb, invoice)
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["status"] = "paid"
    invoice["next_payment_attempt"] = None
    invoice["auto_advance"] = False
    invoice["status_transitions"]["paid_at"] = now
    payment = default_payment(sb, invoice)
    if payment is not None:
        payment["status"] = "canceled" if out_of_band else "paid"
        payment["amount_paid"] = None if out_of_band else invoice["amount_due"]
        payment["status_transitions"]["canceled_at" if out_of_band else "paid_at"] = now
        sb.store.save(payment)
    sb.store.save(invoice)
    emit(sb, "invoice.paid", invoice)
    if not out_of_band:
        emit(sb, "invoice.payment_succeeded", invoice)
    for listener in PAID:
        listener(sb, invoice)


def void(sb: Any, invoice: Obj) -> None:
    if invoice["status"] not in ("open", "uncollectible"):
        raise state_error(f"You can only void an open or uncollectible invoice (this one is {invoice['status']}).")
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = now_for(sb, invoice)
    invoice["next_payment_attempt"] = None
    invoice["auto_advance"] = False
    invoice["amount_remaining"] = 0
    _cancel_payment(sb, invoice)
    sb.store.save(invoice)
    emit(sb, "invoice.voided", invoice)


def mark_uncollectible(sb: Any, invoice: Obj) -> None:
    if invoice["status"] != "open":
        raise state_error(f"You can only mark an open invoice uncollectible (this one is {invoice['status']}).")
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = now_for(sb, invoice)
    invoice["next_payment_attempt"] = None
    invoice["auto_advance"] = False
    sb.store.save(invoice)
    emit(sb, "invoice.marked_uncollectible", invoice)


def _cancel_payment(sb: Any, invoice: Obj) -> None:
    payment = default_payment(sb, invoice)
    if payment is not None and payment["status"] == "open":
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = now_for(sb, invoice)
        sb.store.save(payment)


@hooks.on_payment_intent_changed
def _payment_intent_changed(sb: Any, pi: Obj) -> None:
    """An invoice's PaymentIntent succeeded, wherever it was confirmed (client, 3-D Secure page, attempt)."""
    invoice_id = sb.store.kv.get(f"pi_invoice:{pi['id']}")
    if invoice_id is None or pi.get("status") != "succeeded":
        return
    invoice = get(sb, invoice_id)
    if invoice is not None and invoice["status"] == "open":
        mark_paid(sb, invoice)
