"""Refunds: create (full or partial, by charge or PaymentIntent), retrieve, update, list (also under a charge).

A refund updates its charge's ``amount_refunded``, ``refunded`` and embedded ``refunds``. The
``pm_card_refundFail`` card's refunds succeed, then fail a little later, as Stripe's test card does.
"""

from __future__ import annotations

from typing import Any

from .. import cards
from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..scheduler import job
from ..store import Obj
from .charges import get_charge, refresh_refunds
from .events import created_filter

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                          "xaf", "xof", "xpf"})


def money(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


def get_refund(sb: Any, refund_id: str, param: str = "refund") -> Obj:
    refund = sb.store.get(refund_id, "refund")
    if refund is None:
        raise no_such("refund", refund_id, param)
    return refund


def _destination(charge: Obj) -> Obj:
    type_ = (charge.get("payment_method_details") or {}).get("type", "card")
    if type_ == "card":
        return {"card": {"reference": None, "reference_status": "pending",
                         "reference_type": "acquirer_reference_number",
                         "type": "refund"}, "type": "card"}
    return {"type": type_}


def _refund_fails(sb: Any, charge: Obj) -> bool:
    details = charge.get("payment_method_details") or {}
    if details.get("type") != "card":
        return False
    card = cards.by_fingerprint(details["card"].get("fingerprint"))
    return bool(card and card.refund_fails)


def _charged_back(sb: Any, charge: Obj) -> bool:
    """A dispute that is not an inquiry has already taken the money back: Stripe refuses refunds then."""
    disputes = sb.store.collection("dispute", "charge", charge["id"])
    return any(not sb.store.objects[d]["is_charge_refundable"] for d in disputes.ids)


def create_refund(sb: Any, charge: Obj, amount: int | None, *, reason: str | None = None,
                  metadata: dict[str, str] | None = None, param: str = "charge") -> Obj:
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise invalid_request(f"Charge {charge['id']} has not been captured or did not succeed, so it cannot be "
                              "refunded.", param=param, code="charge_not_refundable")
    if charge["disputed"] and _charged_back(sb, charge):
        raise invalid_request(f"Charge {charge['id']} has been charged back; cannot issue a refund.", param=param,
                              code="charge_disputed")
    refundable = charge["amount"] - charge["amount_refunded"]
    if refundable <= 0:
        raise invalid_request(f"Charge {charge['id']} has already been refunded.", param=param,
                              code="charge_already_refunded")
    amount = refundable if amount is None else amount
    if amount > refundable:
        raise invalid_request(
            f"Refund amount ({money(amount, charge['currency'])}) is greater than unrefunded amount on charge "
            f"({money(refundable, charge['currency'])})", param="amount", code="amount_too_large")
    refund: Obj = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge["id"],
        "created": sb.clock.now_int(),
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": _destination(charge),
        "metadata": dict(metadata or {}),
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    sb.store.add(refund)
    before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    refresh_refunds(sb, charge)
    sb.store.save(charge)
    emit(sb, "refund.created", refund)
    emit(sb, "charge.refunded", charge, {k: v for k, v in before.items() if charge[k] != v})
    if _refund_fails(sb, charge):
        sb.scheduler.after(sb.config.async_settle_seconds, "refund.fail", refund["id"])
    return refund


@job("refund.fail")
def fail_refund(sb: Any, refund_id: str) -> None:
    refund = sb.store.get(refund_id, "refund")
    charge = sb.store.get(refund["charge"], "charge") if refund else None
    if refund is None or charge is None or refund["status"] != "succeeded":
        return
    before = {"status": refund["status"]}
    refund["status"] = "failed"
    refund["failure_reason"] = "expired_or_canceled_card"
    refund["failure_balance_transaction"] = new_id("txn")
    sb.store.save(refund)
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = False
    refresh_refunds(sb, charge)
    sb.store.save(charge)
    emit(sb, "refund.failed", refund)
    emit(sb, "refund.updated", refund, before)
    emit(sb, "charge.refund.updated", refund, before)


# -- routes ---------------------------------------------------------------------------------------------
@route("POST", "/v1/refunds", params=(
    "charge", "payment_intent", "amount", "reason", "metadata", "instructions_email"))
def create(sb: Any, p: Params) -> Obj:
    charge_id = p.optional_str("charge")
    pi_id = p.optional_str("payment_intent")
    if not charge_id and not pi_id:
        raise invalid_request("One of the following params should be provided for this request: payment_intent "
                              "or charge.", code="parameter_missing")
    amount = p.int("amount", minimum=1)
    reason = p.str("reason", choices=REASONS)
    metadata = merge_metadata({}, p.raw("metadata"))
    if pi_id:
        pi = sb.store.get(pi_id, "payment_intent")
        if pi is None:
            raise no_such("payment_intent", pi_id, "payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid_request(f"PaymentIntent {pi_id} does not have a successful charge to refund.",
                                  param="payment_intent", code="charge_not_refundable")
        if charge_id and charge_id != pi["latest_charge"]:
            raise invalid_request(f"Charge {charge_id} does not belong to PaymentIntent {pi_id}.", param="charge")
        charge = get_charge(sb, pi["latest_charge"], "payment_intent")
        return create_refund(sb, charge, amount, reason=reason, metadata=metadata, param="payment_intent")
    charge = get_charge(sb, charge_id or "", "charge")
    return create_refund(sb, charge, amount, reason=reason, metadata=metadata)


@route("GET", "/v1/refunds/{refund_id}")
def retrieve(sb: Any, p: Params, refund_id: str) -> Obj:
    return get_refund(sb, refund_id, "id")


@route("POST", "/v1/refunds/{refund_id}", params=("metadata",))
def update(sb: Any, p: Params, refund_id: str) -> Obj:
    refund = get_refund(sb, refund_id, "id")
    before = dict(refund)
    if "metadata" in p:
        refund["metadata"] = merge_metadata(refund["metadata"], p.raw("metadata"))
    sb.store.save(refund)
    previous = changed(refund, before)
    if previous:
        charge = sb.store.get(refund["charge"], "charge")
        if charge is not None:
            refresh_refunds(sb, charge)
            sb.store.save(charge)
        emit(sb, "refund.updated", refund, previous)
        emit(sb, "charge.refund.updated", refund, previous)
    return refund


def _list(sb: Any, p: Params, charge_id: str | None, pi_id: str | None, url: str) -> Obj:
    store = sb.store
    if charge_id:
        collection = store.collection("refund", "charge", charge_id)
    elif pi_id:
        collection = store.collection("refund", "payment_intent", pi_id)
    else:
        collection = store.collection("refund")
    low, high = created_filter(p)

    def where(refund: Obj) -> bool:
        return ((not (charge_id and pi_id) or refund["payment_intent"] == pi_id)
                and (low is None or refund["created"] >= low) and (high is None or refund["created"] <= high))

    filtered = (charge_id and pi_id) or low is not None or high is not None
    return paginate(store, collection, p, url, where if filtered else None)


@route("GET", "/v1/refunds", params=(*LIST_PARAMS, "charge", "payment_intent", "created"))
def list_(sb: Any, p: Params) -> Obj:
    return _list(sb, p, p.optional_str("charge"), p.optional_str("payment_intent"), "/v1/refunds")


@route("GET", "/v1/charges/{charge_id}/refunds", params=LIST_PARAMS)
def list_for_charge(sb: Any, p: Params, charge_id: str) -> Obj:
    get_charge(sb, charge_id, "charge")
    return _list(sb, p, charge_id, None, f"/v1/charges/{charge_id}/refunds")


@route("GET", "/v1/charges/{charge_id}/refunds/{refund_id}")
def retrieve_for_charge(sb: Any, p: Params, charge_id: str, refund_id: str) -> Obj:
    refund = sb.store.get(refund_id, "refund")
    if refund is None or refund["charge"] != charge_id:
        raise no_such("refund", refund_id, "refund")
    return refund
