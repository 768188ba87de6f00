"""Disputes: ``pm_card_createDispute`` succeeds and is then charged back; evidence, close, list, events."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.sandbox.control import private_sandbox
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver


def _paid(client: stripe.StripeClient, payment_method: str = "pm_card_createDispute", **extra: Any) -> Any:
    return client.v1.payment_intents.create(params={
        "amount": 4200, "currency": "eur", "payment_method": payment_method, "payment_method_types": ["card"],
        "confirm": True, "metadata": {"order": "d-1"}, **extra})


def _events(client: stripe.StripeClient, dispute_id: str) -> list[str]:
    listed = client.v1.events.list(params={"limit": 100})
    return [e.type for e in reversed(listed.data) if e.data.object["id"] == dispute_id]


def test_the_dispute_card_succeeds_and_is_then_charged_back() -> None:
    with private_sandbox() as (server, client), WebhookReceiver() as receiver:
        endpoint = client.v1.webhook_endpoints.create(params={
            "url": receiver.url, "enabled_events": ["charge.dispute.created", "payment_intent.succeeded"]})
        receiver.secret = endpoint.secret
        pi = _paid(client)
        assert pi.status == "succeeded"
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.disputed is True and charge.paid is True

        (dispute,) = client.v1.disputes.list(params={"charge": charge.id}).data
        assert dispute.object == "dispute" and dispute.id.startswith("dp_")
        assert (dispute.amount, dispute.currency, dispute.payment_intent) == (4200, "eur", pi.id)
        assert dispute.status == "needs_response" and dispute.reason == "fraudulent"
        assert dispute.is_charge_refundable is False and dispute.evidence_details.submission_count == 0
        assert dispute.evidence_details.due_by > dispute.created
        assert dispute.payment_method_details.card.case_type == "chargeback"

        event = receiver.wait_for("charge.dispute.created")
        assert_stripe_shape(event)
        assert event["data"]["object"]["id"] == dispute.id and event["data"]["object"]["charge"] == charge.id
        receiver.wait_for("payment_intent.succeeded", where=lambda e: e["data"]["object"]["id"] == pi.id)

        expanded = client.v1.disputes.retrieve(dispute.id, params={"expand": ["charge", "payment_intent"]})
        assert expanded.charge.id == charge.id and expanded.payment_intent.id == pi.id
        assert [d.id for d in client.v1.disputes.list(params={"payment_intent": pi.id}).data] == [dispute.id]
        with pytest.raises(stripe.InvalidRequestError) as refund:
            client.v1.refunds.create(params={"charge": charge.id})
        assert refund.value.code == "charge_disputed" and refund.value.http_status == 400


def test_ordinary_cards_are_not_disputed_and_manual_capture_is_disputed_once_captured(
        stripe_client: stripe.StripeClient) -> None:
    plain = _paid(stripe_client, "pm_card_visa")
    assert stripe_client.v1.charges.retrieve(plain.latest_charge).disputed is False
    assert stripe_client.v1.disputes.list(params={"payment_intent": plain.id}).data == []

    held = _paid(stripe_client, capture_method="manual")
    assert held.status == "requires_capture"
    assert stripe_client.v1.disputes.list(params={"payment_intent": held.id}).data == []
    captured = stripe_client.v1.payment_intents.capture(held.id, params={"amount_to_capture": 4000})
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": captured.id}).data
    assert dispute.amount == 4000


def test_staged_evidence_then_winning_evidence_wins(stripe_client: stripe.StripeClient) -> None:
    pi = _paid(stripe_client)
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": pi.id}).data
    staged = stripe_client.v1.disputes.update(dispute.id, params={
        "evidence": {"customer_name": "Ada Lovelace", "product_description": "100 credits"},
        "metadata": {"case": "c-7"}, "submit": False})
    assert staged.status == "needs_response" and staged.evidence.customer_name == "Ada Lovelace"
    assert staged.evidence_details.has_evidence is True and staged.evidence_details.submission_count == 0
    assert staged.metadata.to_dict() == {"case": "c-7"}

    won = stripe_client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert won.status == "won" and won.evidence_details.submission_count == 1
    assert won.evidence.product_description == "100 credits"  # staged evidence is kept
    assert _events(stripe_client, dispute.id) == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.updated",
        "charge.dispute.updated", "charge.dispute.funds_reinstated", "charge.dispute.closed"]
    with pytest.raises(stripe.InvalidRequestError) as closed:
        stripe_client.v1.disputes.update(dispute.id, params={"evidence": {"customer_name": "Late"}})
    assert closed.value.param == "evidence"
    # metadata stays writable on a closed dispute
    tagged = stripe_client.v1.disputes.update(dispute.id, params={"metadata": {"case": ""}})
    assert tagged.metadata.to_dict() == {} and tagged.status == "won"


def test_the_chargeback_withdraws_amount_and_fee_and_a_win_reinstates_the_amount(
        stripe_client: stripe.StripeClient) -> None:
    pi = _paid(stripe_client)
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": pi.id}).data
    (withdrawal,) = dispute.balance_transactions
    assert (withdrawal.object, withdrawal.type, withdrawal.reporting_category) == (
        "balance_transaction", "adjustment", "dispute")
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net, withdrawal.currency) == (-4200, 1500, -5700, "eur")
    assert [(f.amount, f.type, f.description) for f in withdrawal.fee_details] == [(1500, "stripe_fee",
                                                                                     "Dispute fee")]
    assert withdrawal.source == dispute.id
    fetched = stripe_client.v1.balance_transactions.retrieve(withdrawal.id)
    assert fetched.to_dict() == withdrawal.to_dict()
    withdrawn = _dispute_events(stripe_client, dispute.id, "charge.dispute.funds_withdrawn")
    assert [t["id"] for t in withdrawn["balance_transactions"]] == [withdrawal.id]

    won = stripe_client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert [(t.amount, t.fee, t.net) for t in won.balance_transactions] == [(-4200, 1500, -5700), (4200, 0, 4200)]
    reinstatement = won.balance_transactions[1]
    assert reinstatement.reporting_category == "dispute_reversal" and reinstatement.fee_details == []
    reinstated = _dispute_events(stripe_client, dispute.id, "charge.dispute.funds_reinstated")
    assert reinstated["status"] == "won" and len(reinstated["balance_transactions"]) == 2
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.balance_transactions.retrieve("txn_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


def _dispute_events(client: stripe.StripeClient, dispute_id: str, type_: str) -> Any:
    listed = client.v1.events.list(params={"type": type_, "limit": 100})
    (event,) = [e for e in listed.data if e.data.object["id"] == dispute_id]
    return event.data.object


def test_losing_evidence_loses_and_submitting_without_outcome_waits_for_review(
        stripe_client: stripe.StripeClient) -> None:
    lost = stripe_client.v1.disputes.list(params={"payment_intent": _paid(stripe_client).id}).data[0]
    lost_answer = stripe_client.v1.disputes.update(
        lost.id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    assert lost_answer.status == "lost" and len(lost_answer.balance_transactions) == 1
    assert _events(stripe_client, lost.id)[-2:] == ["charge.dispute.updated", "charge.dispute.closed"]
    reviewed = stripe_client.v1.disputes.list(params={"payment_intent": _paid(stripe_client).id}).data[0]
    under_review = stripe_client.v1.disputes.update(reviewed.id, params={"evidence": {"customer_name": "Ada"}})
    assert under_review.status == "under_review" and under_review.evidence_details.submission_method == "manual"


def test_close_accepts_the_dispute_as_lost(stripe_client: stripe.StripeClient) -> None:
    pi = _paid(stripe_client)
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": pi.id}).data
    closed = stripe_client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    assert _events(stripe_client, dispute.id) == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.closed"]
    assert [t.amount for t in closed.balance_transactions] == [-4200]  # accepting the loss returns nothing
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.disputes.close(dispute.id)
    assert again.value.http_status == 400


def test_bad_requests(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.disputes.retrieve("dp_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": _paid(stripe_client).id}).data
    with pytest.raises(stripe.InvalidRequestError) as file_evidence:
        stripe_client.v1.disputes.update(dispute.id, params={"evidence": {"receipt": "file_123"}})
    assert file_evidence.value.param == "evidence[receipt]"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.disputes.update(dispute.id, params={"evidence": {"mood": "sad"}})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "evidence[mood]"
    assert stripe_client.v1.disputes.retrieve(dispute.id).status == "needs_response"  # nothing half-applied
    page = stripe_client.v1.disputes.list(params={"limit": 2})
    assert len(page.data) == 2 and page.has_more is True and page.url == "/v1/disputes"
