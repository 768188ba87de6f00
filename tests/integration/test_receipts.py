"""Receipts and notices (issue 18, item 3): a paid order puts one receipt (text + HTML, the invoice PDF attached)
in the outbox however often its webhooks arrive; a refund one notice with the coins taken back; a paid renewal
one receipt with Stripe's hosted invoice link. Through the sandbox's hosted Checkout and signed webhooks."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, order_row, pay, sdk, sql,
                                             wait_processed, wait_until)
from tests.integration.subscription_flow import T0, add_months, clock_user

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)
HOUR = 3600


def outbox(tally: Any, to: str, kind: str) -> list[dict[str, Any]]:
    with tally.admin_client() as admin:
        response = admin.get("/v1/admin/outbox", params={"to": to})
        assert response.status_code == 200, response.text
    return [e for e in response.json()["data"] if e["kind"] == kind]


def resend(tally: Any, event_id: str) -> None:
    """Stripe delivering the same event again (``stripe events resend``)."""
    response = httpx.post(f"{tally.sandbox.url}/_sandbox/events/{event_id}/resend", json={})
    assert response.status_code == 200, response.text


def deliveries(tally: Any, event_id: str) -> int:
    found = httpx.get(f"{tally.sandbox.url}/_sandbox/deliveries", params={"event": event_id}).json()
    return sum(1 for d in found["data"] if d["succeeded"])


def event_of(tally: Any, event_type: str, object_id: str) -> str:
    for event in sdk(tally).v1.events.list(params={"type": event_type, "limit": 100}).data:
        if event.to_dict()["data"]["object"].get("id") == object_id:
            return str(event.id)
    raise AssertionError(f"no {event_type} for {object_id}")


def paid_order(tally: Any, user: str, email: str, pack: str = "plus") -> dict[str, Any]:
    with tally.client(user, email) as client:
        started = checkout(client, pack)
    assert pay(tally, started["session_id"], email=email).status_code == 303
    wait_processed(tally, started["session_id"], "checkout.session.completed")
    return {**started, **order_row(tally, started["order_id"])}


def test_a_purchase_puts_one_receipt_with_its_pdf_in_the_outbox(tally: Any) -> None:
    user = new_user()
    email = f"{user}@example.com"
    order = paid_order(tally, user, email)
    completed = event_of(tally, "checkout.session.completed", order["session_id"])
    resend(tally, completed)
    resend(tally, completed)
    wait_until(lambda: deliveries(tally, completed) >= 3, "the event delivered three times")
    with tally.client(user, email) as client:  # the success page's door too
        assert client.get(f"/v1/orders/{order['order_id']}").json()["status"] == "paid"

    [receipt] = outbox(tally, email, "receipt")
    [(number,)] = sql(tally, "SELECT number FROM invoices WHERE order_id = %s", order["order_id"])
    assert number in receipt["subject"]
    body = receipt["body"]
    for expected in ("Plus pack", "Coins: 1,000 + 100 bonus", "Price: $9.99", "Tax: $0.00", "Total paid: $9.99",
                     f"Invoice: {number}", "The invoice is attached as a PDF."):
        assert expected in body, (expected, body)
    assert receipt["html"] and "<strong>$9.99</strong>" in receipt["html"] and 'lang="en"' in receipt["html"]
    assert receipt["attachment"] == f"{number}.pdf"

    pdf = httpx.get(f"{tally.url}/outbox/{receipt['id']}/attachment")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert number in text and "Plus pack" in text and "9.99 USD" in text

    [(count,)] = sql(tally, "SELECT count(*) FROM outbox_emails WHERE dedupe_key = %s",
                     f"receipt:order:{order['order_id']}")
    assert count == 1


def test_a_refund_sends_one_notice_with_the_coins_taken_back(tally: Any) -> None:
    user = new_user()
    email = f"{user}@example.com"
    order = paid_order(tally, user, email, pack="starter")
    refund = sdk(tally).v1.refunds.create(params={"payment_intent": order["stripe_payment_intent_id"]})
    wait_until(lambda: order_row(tally, order["order_id"])["status"] == "refunded", "the order refunded")
    charge = sdk(tally).v1.charges.list(params={"payment_intent": order["stripe_payment_intent_id"]}).data[0]
    refunded = event_of(tally, "charge.refunded", charge.id)
    resend(tally, refunded)
    wait_until(lambda: deliveries(tally, refunded) >= 2, "charge.refunded delivered twice")

    [notice] = outbox(tally, email, "refund")
    assert notice["subject"] == "Refund of $4.99 from Tally Demo"
    assert "Coins taken back: 500" in notice["body"] and "Balance now: 0" in notice["body"]
    assert "We refunded $4.99 of your Starter pack purchase" in notice["body"] and notice["html"]
    [(key,)] = sql(tally, "SELECT dedupe_key FROM outbox_emails WHERE kind = 'refund' AND to_address = %s", email)
    assert key == f"refund:{refund.id}"
    assert len(outbox(tally, email, "receipt")) == 1  # the purchase's receipt, still one


def test_a_paid_renewal_sends_a_receipt_with_the_hosted_invoice_link(tally: Any) -> None:
    user = clock_user(tally, card=None)
    user.checkout("basic", "month")
    user.wait_balance(1000)
    user.advance(add_months(T0, 1) + 2 * HOUR)
    user.wait_balance(2000)
    user.idle()
    renewal = [i for i in user.invoices() if i["billing_reason"] == "subscription_cycle"]
    assert len(renewal) == 1
    [receipt] = outbox(tally, user.email, "receipt")  # the first invoice is Stripe's to confirm; renewals ours
    assert receipt["subject"] == "Your Basic plan renewed: receipt from Tally Demo"
    assert "Amount paid: $9.00" in receipt["body"] and "Credits added: 1,000" in receipt["body"]
    assert renewal[0]["hosted_invoice_url"] in receipt["body"] and renewal[0]["hosted_invoice_url"] in receipt["html"]
