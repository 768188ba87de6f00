"""Completing a Checkout Session: the payer's details, the status, the discount redeemed in payment mode, and
``checkout.session.completed``. Below the two ways a session is paid (``checkout_flow`` for payment and setup
mode, ``checkout_subscription`` for subscription mode), which both end here."""

from __future__ import annotations

from typing import Any

from ..events import emit
from ..store import Obj
from .checkout_discounts import redeem_for_payment
from .checkout_records import extras
from .checkout_tax import details_at_completion


def complete(sb: Any, session: Obj, payment_status: str) -> None:
    ex = extras(sb, session)
    payer = ex["payer"] or {}
    if session["customer"] is None and payer.get("customer"):
        session["customer"] = payer["customer"]
    email = payer.get("email") or session["customer_email"]
    if email is None and session["customer"]:
        customer = sb.store.get(session["customer"], "customer")
        email = customer["email"] if customer else None
    session["customer_details"] = {
        "address": {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None,
                    "state": None},
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": payer.get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
        **details_at_completion(sb, session),
    }
    session["status"] = "complete"
    session["url"] = None
    session["payment_status"] = payment_status
    if session["mode"] == "payment" and session["discounts"]:
        redeem_for_payment(sb, session)
    sb.store.save(session)
    emit(sb, "checkout.session.completed", session)
