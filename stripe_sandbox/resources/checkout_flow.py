"""Paying a Checkout Session, and completing it when its PaymentIntent settles.

The hosted page calls ``pay``. Completion does not happen there but in the PaymentIntent listener, because a
session's payment may also succeed later, elsewhere: on the 3-D Secure page, or when a delayed method
(SEPA, ACH) settles on the scheduler. Subscription mode pays the subscription's first invoice instead
(``checkout_subscription``), and completes when that invoice is paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import hooks
from ..errors import invalid_request
from ..events import emit
from ..params import Params
from ..store import Obj
from . import payment_intents, payment_methods, setup_intents
from .checkout_completion import complete
from .checkout_discounts import recheck
from .checkout_records import extras
from .checkout_subscription import first_invoice_intent, pay as subscribe
from .customers import create as create_customer


@dataclass(frozen=True)
class Payer:
    """Who pays, as typed on the hosted page."""

    email: str
    name: str


@dataclass(frozen=True)
class Card:
    """The card typed on the hosted page, already checked for form (not for validity)."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    # The payer, for callers that give one object (``triggers``); the hosted page passes a ``Payer``.
    email: str = ""
    name: str = ""


def return_url(sb: Any, session: Obj) -> str:
    """Where the 3-D Secure page sends the payer back; it finishes or re-shows the session."""
    return f"{sb.base_url}/c/pay/{session['id']}/return"


def success_redirect(session: Obj) -> str:
    # The placeholder is replaced only when redirecting: the stored success_url keeps it as given.
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])


def needs_card(session: Obj) -> bool:
    """``payment_method_collection=if_required``: a subscription with nothing to pay today starts without one."""
    return not (session["mode"] == "subscription" and session["payment_method_collection"] == "if_required"
                and session["amount_total"] == 0)


def pay(sb: Any, session: Obj, card: Card | None, payer: Payer | None = None) -> Obj:
    """Create the card PaymentMethod and confirm the session's PaymentIntent (or SetupIntent, or first
    invoice) with it.

    Returns the PaymentIntent or SetupIntent after confirmation; raises the ``card_error`` StripeError of a
    refused card or a decline (the session stays open, a failed PaymentIntent stays attached for a retry).
    """
    if payer is None:
        assert card is not None
        payer = Payer(email=card.email, name=card.name)
    billing_details = {
        "address": {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None,
                    "state": None},
        "email": payer.email,
        "name": payer.name,
        "phone": None,
        "tax_id": None,
    }
    # The card first: a refused number must not leave a customer behind.
    pm = None
    if card is not None:
        pm = payment_methods.card_payment_method(sb, number=card.number, exp_month=card.exp_month,
                                                 exp_year=card.exp_year, cvc=card.cvc,
                                                 billing_details=billing_details)
    elif needs_card(session):
        raise invalid_request("Enter your card details.", param="payment_method")
    ex = extras(sb, session)
    customer_id = _customer(sb, session, ex, payer)
    ex["payer"] = {"email": payer.email, "name": payer.name, "customer": customer_id}
    sb.store.save(ex)
    if session["mode"] == "setup":
        assert pm is not None
        return _setup(sb, session, ex, customer_id, pm)
    if session["mode"] == "subscription":
        assert customer_id is not None  # subscriptions always have a customer
        return subscribe(sb, session, customer_id, pm, return_url(sb, session))
    assert pm is not None
    recheck(sb, session, sb.store.get(customer_id or "", "customer"))
    pi = _payment_intent(sb, session, ex, customer_id)
    return payment_intents.confirm_payment_intent(sb, pi, pm["id"], return_url=return_url(sb, session))


def current_intent(sb: Any, session: Obj) -> Obj | None:
    """The PaymentIntent the payer is paying: the session's, or in subscription mode the first invoice's."""
    if session["mode"] == "subscription":
        return first_invoice_intent(sb, session)
    return sb.store.get(session["payment_intent"] or "", "payment_intent")


def _customer(sb: Any, session: Obj, ex: Obj, payer: Payer) -> str | None:
    """The customer the payment belongs to, created for the payer when the session has none.

    The sandbox creates one unless ``customer_creation=if_required`` was asked for explicitly in payment mode
    (Stripe then makes a "guest" payment). It is made before the PaymentIntent so that the intent carries it;
    a retry after a decline reuses it.
    """
    if session["customer"]:
        return str(session["customer"])
    if ex["payer"] and ex["payer"].get("customer"):
        return str(ex["payer"]["customer"])
    if session["mode"] == "payment" and session["customer_creation"] == "if_required":
        return None
    return str(create_customer(sb, Params({"email": payer.email, "name": payer.name}))["id"])


def _payment_intent(sb: Any, session: Obj, ex: Obj, customer_id: str | None) -> Obj:
    """The session's PaymentIntent, created at the first attempt to pay (as current API versions do)."""
    if session["payment_intent"]:
        pi = sb.store.get(session["payment_intent"], "payment_intent")
        if pi is not None and pi["status"] in ("requires_payment_method", "requires_confirmation",
                                              "requires_action"):
            if pi["amount"] != session["amount_total"]:  # a promotion code changed the total since
                pi["amount"] = session["amount_total"]
                sb.store.save(pi)
            return pi
    data = ex["payment_intent_data"]
    pi = payment_intents.new_payment_intent(
        sb,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=customer_id,
        # Like Stripe, the session's own metadata is not copied: payment_intent_data.metadata is the PI's.
        metadata=dict(data.get("metadata") or {}),
        payment_method_types=list(session["payment_method_types"]),
        description=data.get("description"),
        receipt_email=data.get("receipt_email"),
        capture_method=data.get("capture_method") or "automatic",
        setup_future_usage=data.get("setup_future_usage"),
    )
    session["payment_intent"] = pi["id"]
    sb.store.save(session)
    return pi


def _setup(sb: Any, session: Obj, ex: Obj, customer_id: str | None, pm: Obj) -> Obj:
    data = ex["setup_intent_data"]
    si = setup_intents.new_setup_intent(
        sb, customer=customer_id, payment_method_types=list(session["payment_method_types"]),
        metadata=dict(data.get("metadata") or {}), description=data.get("description"))
    session["setup_intent"] = si["id"]
    sb.store.save(session)
    si = setup_intents.confirm_setup_intent(sb, si, pm["id"])
    if si["status"] == "succeeded" and session["status"] == "open":
        complete(sb, session, "no_payment_required")
    return si


@hooks.on_payment_intent_changed
def _payment_intent_changed(sb: Any, pi: Obj) -> None:
    """Complete the session whose PaymentIntent succeeded; report delayed methods' outcome as Stripe does."""
    for session_id in list(sb.store.collection("checkout.session", "payment_intent", pi["id"]).ids):
        session = sb.store.objects[session_id]
        status = pi["status"]
        if session["status"] == "open":
            if status == "succeeded":
                complete(sb, session, "paid")
            elif status == "requires_capture":
                # An uncaptured hold: the funds are not in the account yet.
                complete(sb, session, "unpaid")
            elif status == "processing":
                # A delayed method (SEPA, ACH, Bacs): completed now, the outcome follows as an async_* event.
                ex = extras(sb, session)
                ex["awaiting_async_payment"] = True
                sb.store.save(ex)
                complete(sb, session, "unpaid")
        elif session["status"] == "complete" and session["payment_status"] == "unpaid":
            ex = extras(sb, session)
            awaiting = bool(ex.get("awaiting_async_payment"))
            if status == "succeeded":
                session["payment_status"] = "paid"
                sb.store.save(session)
                if awaiting:
                    emit(sb, "checkout.session.async_payment_succeeded", session)
            elif status in ("requires_payment_method", "canceled") and awaiting:
                emit(sb, "checkout.session.async_payment_failed", session)
            if awaiting and status != "processing":
                ex["awaiting_async_payment"] = False
                sb.store.save(ex)
