"""Charges: made by PaymentIntents (never created directly here); retrieve, update, list, and a receipt page.

A charge embeds its newest refunds (``refunds``), which the refunds module keeps current.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .. import cards
from ..errors import no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, embedded_list, paginate
from ..params import Params, merge_metadata
from ..routing import PAGE_ROUTES, route
from ..store import Obj
from .customer_records import get_customer
from .events import created_filter

SELLER_APPROVED = "Payment complete."
SELLER_DECLINED = "The bank did not return any further details with this decline."


def get_charge(sb: Any, charge_id: str, param: str = "charge") -> Obj:
    charge = sb.store.get(charge_id, "charge")
    if charge is None:
        raise no_such("charge", charge_id, param)
    return charge


def _card_details(pm: Obj, amount: int, three_d_secure: Obj | None) -> Obj:
    card = pm["card"]
    return {
        "amount_authorized": amount,
        "authorization_code": None,
        "brand": card["brand"],
        "checks": dict(card["checks"] or {}),
        "country": card["country"],
        "electronic_commerce_indicator": None,
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": card["last4"],
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": card["brand"],
        "network_token": {"used": False},
        "network_transaction_id": None,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": card["regulated_status"],
        "three_d_secure": three_d_secure,
        "transaction_link_id": None,
        "wallet": None,
    }


def payment_method_details(pm: Obj, amount: int, three_d_secure: Obj | None = None) -> Obj:
    type_ = pm["type"]
    source = pm.get(type_) or {}
    if type_ == "card":
        details = _card_details(pm, amount, three_d_secure)
    elif type_ == "sepa_debit":
        details = {k: source.get(k) for k in ("bank_code", "branch_code", "country", "fingerprint", "last4")}
        details.update(expected_debit_date=None, mandate=None)
    elif type_ == "us_bank_account":
        details = {k: source.get(k) for k in ("account_holder_type", "account_type", "bank_name", "fingerprint",
                                              "last4", "routing_number")}
        details.update(expected_debit_date=None, mandate=None, payment_reference=None)
    elif type_ == "bacs_debit":
        details = {**source, "expected_debit_date": None, "mandate": None}
    elif type_ in ("fpx", "ideal", "p24"):
        details = {**source, "transaction_id": None} if type_ != "p24" else {**source, "reference": None,
                                                                            "verified_name": None}
    else:
        details = {}
    return {"type": type_, type_: {**REDIRECT_DETAILS.get(type_, {}), **details}}


_SEPA_GENERATED = {"generated_sepa_debit": None, "generated_sepa_debit_mandate": None, "iban_last4": None,
                   "verified_name": None}
# The fields Stripe always shows in a redirect method's charge details (null where the bank tells nothing).
REDIRECT_DETAILS: dict[str, Obj] = {
    "alipay": {"fingerprint": None, "transaction_id": None},
    "grabpay": {"transaction_id": None},
    "paynow": {"reference": None},
    "ideal": {"bank": None, "bic": None, **_SEPA_GENERATED},
    "bancontact": {"bank_code": None, "bank_name": None, "bic": None, "preferred_language": "en", **_SEPA_GENERATED},
    "klarna": {"payer_details": None, "payment_method_category": None, "preferred_locale": None},
}


def _advice(decline_code: str | None) -> str | None:
    """Stripe's advice to the merchant about retrying a declined card."""
    if decline_code is None:
        return None
    if decline_code in ("processing_error", "card_velocity_exceeded"):
        return "try_again_later"
    if decline_code in ("lost_card", "stolen_card", "test_mode_live_card"):
        return "do_not_try_again"
    return "confirm_card_data"


# Radar's verdict on a test card (``pm_card_riskLevelElevated``, ``pm_card_radarBlock`` ...): level, score.
RISK_SCORES = {"normal": 20, "elevated": 65, "highest": 95}
SELLER_BLOCKED = "Stripe blocked this payment as too risky."


def _outcome(status: str, decline_code: str | None, message: str | None, card: cards.TestCard | None = None) -> Obj:
    approved = status != "failed"
    risk_level = card.risk_level if card is not None else "normal"
    if card is not None and card.blocked:
        return {"advice_code": "do_not_try_again", "network_advice_code": None, "network_decline_code": None,
                "network_status": "not_sent_to_network", "reason": "highest_risk_level", "risk_level": risk_level,
                "risk_score": RISK_SCORES[risk_level], "seller_message": SELLER_BLOCKED, "type": "blocked"}
    return {
        "advice_code": _advice(decline_code) if not approved else None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network" if approved else "declined_by_network",
        "reason": None if approved else decline_code,
        "risk_level": risk_level,
        "risk_score": RISK_SCORES[risk_level],
        "seller_message": SELLER_APPROVED if approved else (SELLER_DECLINED if decline_code else message),
        "type": "authorized" if approved else "issuer_declined",
    }


def new_charge(sb: Any, pi: Obj, pm: Obj, *, status: str, captured: bool = False,
               failure_code: str | None = None, failure_message: str | None = None,
               decline_code: str | None = None, three_d_secure: Obj | None = None) -> Obj:
    """Store the charge a PaymentIntent's attempt made (``succeeded``, ``pending`` or ``failed``)."""
    charge_id = new_id("ch")
    amount = pi["amount"]
    paid_now = status == "succeeded" and captured
    suffix = pi.get("statement_descriptor_suffix")
    charge: Obj = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if paid_now else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn") if paid_now else None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": pi.get("statement_descriptor")
        or (f"SANDBOX* {suffix}" if suffix else "SANDBOX"),
        "captured": paid_now,
        "created": sb.clock.now_int(),
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": _outcome(status, decline_code, failure_message, _test_card(pm)),
        "paid": status == "succeeded",
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": payment_method_details(pm, amount, three_d_secure),
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{sb.base_url}/receipts/payment/{charge_id}",
        "refunded": False,
        "refunds": embedded_list(f"/v1/charges/{charge_id}/refunds", []),
        "review": None,
        "shipping": pi["shipping"],
        "source": None,
        "source_transfer": None,
        "statement_descriptor": pi.get("statement_descriptor"),
        "statement_descriptor_suffix": suffix,
        "status": status,
        "transfer_data": None,
        "transfer_group": pi.get("transfer_group"),
    }
    return sb.store.add(charge)


def _test_card(pm: Obj) -> cards.TestCard | None:
    return cards.by_fingerprint((pm.get("card") or {}).get("fingerprint")) if pm["type"] == "card" else None


def mark_paid(sb: Any, charge: Obj, amount_captured: int) -> None:
    """A pending or uncaptured charge becomes a captured, paid one."""
    charge["status"] = "succeeded"
    charge["paid"] = True
    charge["captured"] = True
    charge["amount_captured"] = amount_captured
    charge["balance_transaction"] = new_id("txn")
    sb.store.save(charge)


def mark_failed(sb: Any, charge: Obj, code: str, message: str) -> None:
    charge["status"] = "failed"
    charge["paid"] = False
    charge["failure_code"] = code
    charge["failure_message"] = message
    charge["outcome"] = _outcome("failed", None, message)
    sb.store.save(charge)


def refresh_refunds(sb: Any, charge: Obj) -> None:
    """Rebuild the embedded ``refunds`` list (newest first, at most one page) from the refund index."""
    store = sb.store
    ids = []
    for refund_id in store.collection("refund", "charge", charge["id"]).newest_first():
        ids.append(refund_id)
        if len(ids) > 10:
            break
    charge["refunds"] = embedded_list(f"/v1/charges/{charge['id']}/refunds", [store.objects[i] for i in ids])


# -- routes ---------------------------------------------------------------------------------------------
@route("GET", "/v1/charges/{charge_id}")
def retrieve(sb: Any, p: Params, charge_id: str) -> Obj:
    return get_charge(sb, charge_id, "id")


@route("POST", "/v1/charges/{charge_id}", params=(
    "description", "metadata", "receipt_email", "fraud_details", "shipping", "transfer_group", "customer"))
def update(sb: Any, p: Params, charge_id: str) -> Obj:
    charge = get_charge(sb, charge_id, "id")
    before = dict(charge)
    for name in ("description", "receipt_email", "transfer_group"):
        if name in p:
            charge[name] = p.optional_str(name)
    if "metadata" in p:
        charge["metadata"] = merge_metadata(charge["metadata"], p.raw("metadata"))
    if "customer" in p and charge["customer"] is None:
        charge["customer"] = get_customer(sb, p.str("customer", required=True) or "", "customer")["id"]
    fraud = p.dict("fraud_details")
    if fraud is not None:
        fraud.only("user_report")
        report = fraud.str("user_report", choices=("fraudulent", "safe"))
        charge["fraud_details"] = {"user_report": report} if report else {}
    sb.store.save(charge)
    previous = changed(charge, before)
    if previous:
        emit(sb, "charge.updated", charge, previous)
    return charge


@route("GET", "/v1/charges", params=(*LIST_PARAMS, "customer", "payment_intent", "created", "transfer_group"))
def list_(sb: Any, p: Params) -> Obj:
    customer = p.optional_str("customer")
    payment_intent = p.optional_str("payment_intent")
    group = p.optional_str("transfer_group")
    store = sb.store
    if payment_intent:
        collection = store.collection("charge", "payment_intent", payment_intent)
    elif customer:
        collection = store.collection("charge", "customer", customer)
    else:
        collection = store.collection("charge")

    low, high = created_filter(p)

    def where(charge: Obj) -> bool:
        return ((customer is None or charge["customer"] == customer)
                and (group is None or charge["transfer_group"] == group)
                and (low is None or charge["created"] >= low) and (high is None or charge["created"] <= high))

    filtered = (payment_intent and customer) or group or low is not None or high is not None
    return paginate(store, collection, p, "/v1/charges", where if filtered else None)


# -- receipt page: ``receipt_url`` must lead somewhere -------------------------------------------------------
async def receipt_page(request: Request) -> Response:
    sb = request.app.state.sandbox
    charge = sb.store.get(request.path_params["charge_id"], "charge")
    if charge is None or not charge["paid"]:
        return HTMLResponse("<!doctype html><title>Receipt not found</title><h1>Receipt not found</h1>", 404)
    amount = f"{charge['amount'] / 100:.2f} {charge['currency'].upper()}"
    refunded = (f"<p>Refunded: {charge['amount_refunded'] / 100:.2f} {charge['currency'].upper()}</p>"
                if charge["amount_refunded"] else "")
    body = (f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Receipt {html.escape(charge['id'])}"
            f"</title><main><h1>Receipt</h1><p>Amount paid: {html.escape(amount)}</p>{refunded}"
            f"<p>Payment: {html.escape(charge['id'])}</p>"
            f"<p>{html.escape(charge['description'] or '')}</p></main></html>")
    return HTMLResponse(body)


PAGE_ROUTES.append(Route("/receipts/payment/{charge_id}", receipt_page, methods=["GET"]))
