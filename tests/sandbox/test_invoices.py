import httpx
import pytest
import stripe

from tests.sandbox.billing_support import setup
from tests.stripe_shapes import assert_stripe_shape


def _draft(client: stripe.StripeClient, customer_id: str, amounts: list[int]) -> stripe.Invoice:
    for amount in amounts:
        item = client.v1.invoice_items.create(params={"customer": customer_id, "amount": amount, "currency": "usd",
                                                      "description": f"Item {amount}"})
        assert_stripe_shape(item)
    invoice = client.v1.invoices.create(params={"customer": customer_id, "pending_invoice_items_behavior": "include",
                                                "auto_advance": False})
    assert_stripe_shape(invoice)
    return invoice


def test_draft_finalize_pay_and_hosted_pages(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    invoice = _draft(stripe_client, s.customer.id, [1200, 300])
    assert invoice.status == "draft" and invoice.amount_due == 1500 and invoice.hosted_invoice_url is None
    lines = stripe_client.v1.invoices.line_items.list(invoice.id, params={"limit": 1})
    assert_stripe_shape(lines)
    assert len(lines.data) == 1 and lines.has_more
    finalized = stripe_client.v1.invoices.finalize_invoice(invoice.id)
    assert_stripe_shape(finalized)
    assert finalized.status == "open" and finalized.number.endswith("-0001")
    page = httpx.get(finalized.hosted_invoice_url)
    assert page.status_code == 200 and finalized.number in page.text
    pdf = httpx.get(finalized.invoice_pdf)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-1.4") and pdf.content.rstrip().endswith(b"%%EOF")
    paid = stripe_client.v1.invoices.pay(invoice.id)
    assert_stripe_shape(paid)
    assert paid.status == "paid" and paid.amount_paid == 1500 and paid.amount_remaining == 0
    assert s.types("invoice.") == ["invoice.created", "invoice.finalized", "invoice.paid",
                                   "invoice.payment_succeeded"]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.void_invoice(invoice.id)


def test_out_of_band_void_uncollectible_and_declines(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card="pm_card_chargeCustomerFail")
    first = _draft(stripe_client, s.customer.id, [500])
    band = stripe_client.v1.invoices.pay(first.id, params={"paid_out_of_band": True})
    assert_stripe_shape(band)
    assert band.status == "paid"
    second = _draft(stripe_client, s.customer.id, [700])
    stripe_client.v1.invoices.finalize_invoice(second.id)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(second.id)
    failed = stripe_client.v1.invoices.retrieve(second.id)
    assert failed.status == "open" and failed.attempt_count == 1
    voided = stripe_client.v1.invoices.void_invoice(second.id)
    assert_stripe_shape(voided)
    assert voided.status == "void"
    third = _draft(stripe_client, s.customer.id, [900])
    stripe_client.v1.invoices.finalize_invoice(third.id)
    bad = stripe_client.v1.invoices.mark_uncollectible(third.id)
    assert_stripe_shape(bad)
    assert bad.status == "uncollectible"
    listed = stripe_client.v1.invoices.list(params={"customer": s.customer.id, "status": "void"})
    assert_stripe_shape(listed)
    assert [i.id for i in listed.data] == [second.id]
    assert "invoice.payment_failed" in s.types("invoice.")
    assert "invoice.marked_uncollectible" in s.types("invoice.")


def test_create_preview_of_the_next_renewal(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    price = s.price(4200)
    sub = stripe_client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}]})
    extra = stripe_client.v1.invoice_items.create(params={"customer": s.customer.id, "amount": 100,
                                                          "currency": "usd", "subscription": sub.id})
    assert_stripe_shape(extra)
    preview = stripe_client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert_stripe_shape(preview)
    assert preview.amount_due == 4300 and preview.id.startswith("upcoming_in")
    assert preview.period_end == sub["items"].data[0].current_period_end
    pending = stripe_client.v1.invoice_items.list(params={"customer": s.customer.id, "pending": True})
    assert [i.id for i in pending.data] == [extra.id]  # a preview takes nothing
