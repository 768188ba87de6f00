"""Disputes: opened by the test card that is charged back (``pm_card_createDispute``, 4000 0000 0000 0259);
retrieve, update (evidence, metadata, submit), close, list.

As on Stripe the payment succeeds and the dispute follows: when a charge of that card is captured, the charge
becomes ``disputed: true`` and a ``fraudulent`` chargeback in ``needs_response`` is opened
(``charge.dispute.created``), whose amount and a dispute fee are withdrawn at once
(``charge.dispute.funds_withdrawn``; the dispute lists that balance transaction). Submitting evidence moves it
to ``under_review``; Stripe's test-mode evidence ``winning_evidence`` / ``losing_evidence`` (as
``uncategorized_text``) then decides it: won reinstates the amount (``charge.dispute.funds_reinstated``, a
second balance transaction; the fee is kept) and closes it; lost and closing (accepting the loss) only close
it (``charge.dispute.closed``). Not simulated: file evidence (the sandbox has no Files API).
"""

from __future__ import annotations

from typing import Any

from .. import cards, hooks
from ..errors import invalid_request, no_such, state_error
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj
from .balance_transactions import record
from .events import created_filter

TEXT_EVIDENCE = (
    "access_activity_log", "billing_address", "cancellation_policy_disclosure", "cancellation_rebuttal",
    "customer_email_address", "customer_name", "customer_purchase_ip", "duplicate_charge_explanation",
    "duplicate_charge_id", "product_description", "refund_policy_disclosure", "refund_refusal_explanation",
    "service_date", "shipping_address", "shipping_carrier", "shipping_date", "shipping_tracking_number",
    "uncategorized_text")
FILE_EVIDENCE = (
    "cancellation_policy", "customer_communication", "customer_signature", "duplicate_charge_documentation",
    "receipt", "refund_policy", "service_documentation", "shipping_documentation", "uncategorized_file")
RESPONSE_DAYS = 7  # the network's deadline for evidence, a stand-in for Stripe's per-network dates
OPEN = ("needs_response", "warning_needs_response")
# Stripe's test mode decides a submitted dispute by these words in ``uncategorized_text``.
TEST_OUTCOMES = {"winning_evidence": "won", "losing_evidence": "lost"}
# Visa's reason codes for the reasons the test cards give.
NETWORK_REASON_CODES = {"fraudulent": "10.4", "product_not_received": "13.1"}
DISPUTE_FEE = 1500  # Stripe's US dispute fee ($15), charged here in the charge's currency


def get_dispute(sb: Any, dispute_id: str, param: str = "dispute") -> Obj:
    dispute = sb.store.get(dispute_id, "dispute")
    if dispute is None:
        raise no_such("dispute", dispute_id, param)
    return dispute


def _evidence() -> Obj:
    return {**{name: None for name in (*TEXT_EVIDENCE, *FILE_EVIDENCE)}, "enhanced_evidence": {}}


def open_dispute(sb: Any, charge: Obj, reason: str = "fraudulent", *, inquiry: bool = False) -> Obj:
    """A chargeback (the amount and a fee withdrawn at once) or an inquiry (no money moves until it escalates)."""
    now = sb.clock.now_int()
    card = (charge["payment_method_details"] or {}).get("card") or {}
    dispute: Obj = {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": charge["amount_captured"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": _evidence(),
        "evidence_details": {"due_by": now + RESPONSE_DAYS * 86400, "enhanced_eligibility": {},
                             "has_evidence": False, "past_due": False, "submission_count": 0,
                             "submission_method": "not_submitted"},
        "intended_submission_method": None,
        "is_charge_refundable": inquiry,  # a chargeback's money has already gone back
        "livemode": False,
        "metadata": {},
        "network_reason_code": NETWORK_REASON_CODES.get(reason),
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {"card": {"brand": card.get("brand", "visa"),
                                            "case_type": "inquiry" if inquiry else "chargeback",
                                            "network": card.get("network") or card.get("brand", "visa"),
                                            "network_reason_code": NETWORK_REASON_CODES.get(reason)},
                                   "type": "card"},
        "reason": reason,
        "status": "warning_needs_response" if inquiry else "needs_response",
    }
    sb.store.add(dispute)
    charge["disputed"] = True
    sb.store.save(charge)
    emit(sb, "charge.dispute.created", dispute)
    if not inquiry:
        _move_funds(sb, dispute, "charge.dispute.funds_withdrawn", -dispute["amount"], DISPUTE_FEE)
    return dispute


def _move_funds(sb: Any, dispute: Obj, event_type: str, amount: int, fee: int = 0) -> None:
    withdrawn = amount < 0
    transaction = record(
        sb, amount=amount, currency=dispute["currency"], source=dispute["id"],
        description=f"Chargeback {'withdrawal' if withdrawn else 'reversal'} for {dispute['charge']}",
        reporting_category="dispute" if withdrawn else "dispute_reversal",
        fee=fee, fee_description="Dispute fee" if fee else None)
    dispute["balance_transactions"].append(transaction)
    sb.store.save(dispute)
    emit(sb, event_type, dispute)


@hooks.on_payment_intent_changed
def _dispute_charged_back_cards(sb: Any, pi: Obj) -> None:
    if pi["status"] != "succeeded" or not pi["latest_charge"]:
        return
    charge = sb.store.get(pi["latest_charge"], "charge")
    if charge is None or charge["disputed"] or not charge["captured"]:
        return
    details = charge["payment_method_details"] or {}
    card = cards.by_fingerprint((details.get("card") or {}).get("fingerprint")) if details.get("type") == "card" \
        else None
    if card is not None and card.dispute is not None:
        open_dispute(sb, charge, card.dispute, inquiry=card.inquiry)


def _close(sb: Any, dispute: Obj, status: str) -> None:
    dispute["status"] = status
    sb.store.save(dispute)
    if status == "won":
        _move_funds(sb, dispute, "charge.dispute.funds_reinstated", dispute["amount"])
    emit(sb, "charge.dispute.closed", dispute)


# -- routes ---------------------------------------------------------------------------------------------
@route("GET", "/v1/disputes/{dispute_id}")
def retrieve(sb: Any, p: Params, dispute_id: str) -> Obj:
    return get_dispute(sb, dispute_id, "dispute")


@route("POST", "/v1/disputes/{dispute_id}", params=("evidence", "metadata", "submit", "intended_submission_method"))
def update(sb: Any, p: Params, dispute_id: str) -> Obj:
    dispute = get_dispute(sb, dispute_id, "dispute")
    evidence = p.dict("evidence")
    submit = p.bool("submit", True) if evidence is not None or "submit" in p else False
    method = p.str("intended_submission_method",
                   choices=("manual", "prefer_manual", "prefer_smart_disputes", "smart_disputes"))
    _check_open(dispute, evidence, submit)
    before = {k: dict(v) if isinstance(v, dict) else v for k, v in dispute.items()}
    if evidence is not None:
        _set_evidence(dispute, evidence)
    if "metadata" in p:
        dispute["metadata"] = merge_metadata(dispute["metadata"], p.raw("metadata"))
    if method is not None:
        dispute["intended_submission_method"] = method
    if submit:
        _submit(dispute)
    sb.store.save(dispute)
    previous = changed(dispute, before)
    if previous:
        emit(sb, "charge.dispute.updated", dispute, previous)
    if submit:
        _close_with_test_outcome(sb, dispute)
    return dispute


def _check_open(dispute: Obj, evidence: Params | None, submit: bool | None) -> None:
    if (evidence is not None or submit) and dispute["status"] not in OPEN:
        raise state_error(f"This dispute is {dispute['status']}: its evidence can no longer be changed or "
                          "submitted.", param="evidence" if evidence is not None else "submit")


def _close_with_test_outcome(sb: Any, dispute: Obj) -> None:
    """Submitted evidence that names a test outcome (``winning_evidence``, ...) closes the dispute with it."""
    outcome = TEST_OUTCOMES.get(dispute["evidence"]["uncategorized_text"] or "")
    if outcome and dispute["status"] == "under_review":
        _close(sb, dispute, outcome)


def _set_evidence(dispute: Obj, evidence: Params) -> None:
    """Text evidence only: the sandbox has no Files API, nor enhanced evidence."""
    for name in FILE_EVIDENCE:
        if name in evidence:
            raise invalid_request("The sandbox has no Files API: give text evidence only.",
                                  param=f"evidence[{name}]")
    if "enhanced_evidence" in evidence:
        raise invalid_request("The sandbox does not simulate enhanced evidence.",
                              param="evidence[enhanced_evidence]")
    evidence.only(*TEXT_EVIDENCE)
    for name in TEXT_EVIDENCE:
        if name in evidence:
            dispute["evidence"][name] = evidence.str(name) or None
    dispute["evidence_details"]["has_evidence"] = any(dispute["evidence"][n] for n in TEXT_EVIDENCE)


def _submit(dispute: Obj) -> None:
    details = dispute["evidence_details"]
    details["submission_count"] += 1
    details["submission_method"] = "manual"
    dispute["status"] = "under_review" if dispute["status"] == "needs_response" else "warning_under_review"


@route("POST", "/v1/disputes/{dispute_id}/close")
def close(sb: Any, p: Params, dispute_id: str) -> Obj:
    dispute = get_dispute(sb, dispute_id, "dispute")
    if dispute["status"] not in OPEN:
        raise state_error(f"Only disputes that need a response can be closed; this one is {dispute['status']}.")
    _close(sb, dispute, "warning_closed" if dispute["status"].startswith("warning_") else "lost")
    return dispute


@route("GET", "/v1/disputes", params=(*LIST_PARAMS, "charge", "payment_intent", "created"))
def list_(sb: Any, p: Params) -> Obj:
    charge = p.optional_str("charge")
    payment_intent = p.optional_str("payment_intent")
    low, high = created_filter(p)
    store = sb.store
    if charge:
        collection = store.collection("dispute", "charge", charge)
    elif payment_intent:
        collection = store.collection("dispute", "payment_intent", payment_intent)
    else:
        collection = store.collection("dispute")

    def where(dispute: Obj) -> bool:
        return ((payment_intent is None or dispute["payment_intent"] == payment_intent)
                and (low is None or dispute["created"] >= low) and (high is None or dispute["created"] <= high))

    return paginate(store, collection, p, "/v1/disputes", where)
