import pytest
import stripe

from tests.sandbox.billing_support import T0, prorated, setup
from tests.stripe_shapes import assert_stripe_shape

DAY = 86400


def _subscribe(s, price, **extra):  # type: ignore[no-untyped-def]
    sub = s.client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                                   **extra})
    assert_stripe_shape(sub)
    return sub


def _change(s, sub, price, behavior, when):  # type: ignore[no-untyped-def]
    updated = s.client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": price.id}], "proration_behavior": behavior,
        "proration_date": when})
    assert_stripe_shape(updated)
    return updated


def test_upgrade_with_create_prorations_bills_stripes_formula_at_renewal(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, pro = s.price(1000, name="Basic"), s.price(3000, name="Pro")
    sub = _subscribe(s, basic)
    start, end = sub["items"].data[0].current_period_start, sub["items"].data[0].current_period_end
    when = T0 + 10 * DAY + 12345
    s.advance(when)
    preview = stripe_client.v1.invoices.create_preview(params={
        "subscription": sub.id, "subscription_details": {
            "items": [{"id": sub["items"].data[0].id, "price": pro.id}], "proration_date": when}})
    assert_stripe_shape(preview)
    updated = _change(s, sub, pro, "create_prorations", when)
    assert updated["items"].data[0].price.id == pro.id and updated.latest_invoice == sub.latest_invoice
    credit, charge = -prorated(1000, end - when, end - start), prorated(3000, end - when, end - start)
    pending = stripe_client.v1.invoice_items.list(params={"customer": s.customer.id, "pending": True})
    assert_stripe_shape(pending)
    assert sorted(i.amount for i in pending.data) == sorted([credit, charge])
    assert all(i.proration and i.period.start == when and i.period.end == end for i in pending.data)
    assert preview.amount_due == 3000 + credit + charge
    s.advance(end + 7200)
    renewal = s.invoices()[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
    assert sorted(line.amount for line in renewal.lines.data) == sorted([3000, credit, charge])
    assert renewal.amount_paid == 3000 + credit + charge
    lines = stripe_client.v1.invoices.line_items.list(renewal.id)
    assert_stripe_shape(lines)
    assert {line.parent.type for line in lines.data} == {"subscription_item_details", "invoice_item_details"}


def test_always_invoice_charges_at_once_and_none_does_not_prorate(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, pro, team = s.price(1000), s.price(3000), s.price(5000)
    sub = _subscribe(s, basic)
    start, end = sub["items"].data[0].current_period_start, sub["items"].data[0].current_period_end
    when = T0 + 20 * DAY
    s.advance(when)
    updated = _change(s, sub, pro, "always_invoice", when)
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    assert_stripe_shape(invoice)
    expected = prorated(3000, end - when, end - start) - prorated(1000, end - when, end - start)
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert invoice.amount_paid == expected
    none = _change(s, updated, team, "none", when)
    assert none.latest_invoice == invoice.id
    pending = stripe_client.v1.invoice_items.list(params={"customer": s.customer.id, "pending": True})
    assert pending.data == []


def test_downgrade_credit_lowers_the_next_invoice(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    pro, basic = s.price(3000), s.price(1000)
    sub = _subscribe(s, pro)
    start, end = sub["items"].data[0].current_period_start, sub["items"].data[0].current_period_end
    when = T0 + 5 * DAY
    s.advance(when)
    _change(s, sub, basic, "create_prorations", when)
    s.advance(end + 7200)
    renewal = s.invoices()[-1]
    net = prorated(1000, end - when, end - start) - prorated(3000, end - when, end - start)
    # The credit exceeds the new price: nothing is charged and the rest becomes customer credit.
    assert net < -1000 and renewal.total == 1000 + net and renewal.amount_paid == 0 and renewal.status == "paid"
    customer = stripe_client.v1.customers.retrieve(s.customer.id)
    assert customer.balance == 1000 + net and renewal.ending_balance == 1000 + net


def test_cancel_at_period_end_deletes_at_the_boundary(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    sub = _subscribe(s, s.price(1000))
    end = sub["items"].data[0].current_period_end
    updated = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert_stripe_shape(updated)
    assert updated.cancel_at_period_end and updated.status == "active"
    s.advance(end - 3600)
    assert s.subscription(sub.id).status == "active"
    s.advance(end + 3600)
    final = s.subscription(sub.id)
    assert final.status == "canceled" and final.ended_at == end
    assert s.types("customer.subscription.deleted") == ["customer.subscription.deleted"]
    assert len(s.invoices()) == 1


def test_trial_charges_nothing_until_it_ends(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    sub = _subscribe(s, s.price(1500), trial_period_days=14)
    assert sub.status == "trialing" and sub.trial_end == T0 + 14 * DAY
    first = s.invoices()[0]
    assert first.amount_due == 0 and first.status == "paid"
    s.advance(T0 + 11 * DAY + 60)
    assert s.types("customer.subscription.trial_will_end") == ["customer.subscription.trial_will_end"]
    assert len(s.invoices()) == 1
    s.advance(T0 + 14 * DAY + 7200)
    after = s.subscription(sub.id)
    assert after.status == "active"
    assert after["items"].data[0].current_period_start == T0 + 14 * DAY
    assert [i.amount_paid for i in s.invoices()] == [0, 1500]


def test_failing_card_goes_past_due_retries_then_cancels(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card="pm_card_chargeCustomerFail")
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": s.customer.id})
    price = s.price(2500)
    # The first invoice succeeds with a working card; renewals then fall on the failing one.
    sub = _subscribe(s, price, default_payment_method=good.id)
    assert sub.status == "active"
    stripe_client.v1.subscriptions.update(sub.id, params={"default_payment_method": ""})
    end = sub["items"].data[0].current_period_end
    s.advance(end + 7200)
    assert s.subscription(sub.id).status == "past_due"
    renewal = s.invoices()[-1]
    assert renewal.status == "open" and renewal.attempt_count == 1
    assert renewal.next_payment_attempt == end + 3600 + 3 * DAY
    s.advance(end + 4 * DAY)
    assert stripe_client.v1.invoices.retrieve(renewal.id).attempt_count == 2
    s.advance(end + 8 * DAY)
    final = s.subscription(sub.id)
    assert final.status == "canceled" and final.cancellation_details.reason == "payment_failed"
    assert s.types("invoice.payment_failed") == ["invoice.payment_failed"] * 4
    assert s.types("customer.subscription.deleted") == ["customer.subscription.deleted"]


def test_first_payment_declined_leaves_incomplete_then_expires(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card="pm_card_chargeCustomerFail")
    price = s.price(900)
    sub = _subscribe(s, price, expand=["latest_invoice.confirmation_secret"])
    assert sub.status == "incomplete" and sub.latest_invoice.status == "open"
    assert sub.latest_invoice.confirmation_secret.type == "payment_intent"
    with pytest.raises(stripe.CardError):
        _subscribe(s, price, payment_behavior="error_if_incomplete")
    s.advance(T0 + 24 * 3600)
    assert s.subscription(sub.id).status == "incomplete_expired"
    listed = stripe_client.v1.subscriptions.list(params={"customer": s.customer.id, "status": "all"})
    assert_stripe_shape(listed)
    assert sub.id in [x.id for x in listed.data]


def test_default_incomplete_then_client_pays(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card=None)
    sub = _subscribe(s, s.price(700), payment_behavior="default_incomplete", expand=["latest_invoice.payments"])
    assert sub.status == "incomplete"
    pi_id = sub.latest_invoice.payments.data[0].payment.payment_intent
    confirmed = stripe_client.v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert s.subscription(sub.id).status == "active"
    listed = stripe_client.v1.subscriptions.list(params={"customer": s.customer.id, "status": "active"})
    assert [x.id for x in listed.data] == [sub.id]


def test_cancel_now_pause_and_items(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    price = s.price(1200)
    sub = _subscribe(s, price)
    paused = stripe_client.v1.subscriptions.update(sub.id, params={"pause_collection": {"behavior": "void"}})
    assert_stripe_shape(paused)
    assert paused.pause_collection.behavior == "void"
    items = stripe_client.v1.subscription_items.list(params={"subscription": sub.id})
    assert_stripe_shape(items)
    item = stripe_client.v1.subscription_items.update(items.data[0].id, params={"quantity": 2,
                                                                                "proration_behavior": "none"})
    assert_stripe_shape(item)
    assert item.quantity == 2
    canceled = stripe_client.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
    assert_stripe_shape(canceled)
    assert canceled.status == "canceled"


def test_trial_without_card_pauses_then_resume_charges(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card=None)
    price = s.price(1500)
    sub = _subscribe(s, price, trial_period_days=7,
                     trial_settings={"end_behavior": {"missing_payment_method": "pause"}})
    assert sub.status == "trialing" and sub.trial_settings.end_behavior.missing_payment_method == "pause"
    s.advance(T0 + 7 * DAY + 60)
    paused = s.subscription(sub.id)
    assert paused.status == "paused"
    assert s.types("customer.subscription.paused") == ["customer.subscription.paused"]
    event = [e for e in s.events() if e["type"] == "customer.subscription.paused"][0]
    assert_stripe_shape(event["data"]["object"])
    assert [i.amount_due for i in s.invoices()] == [0]  # nothing billed while paused
    s.advance(T0 + 20 * DAY)
    assert s.subscription(sub.id).status == "paused" and len(s.invoices()) == 1

    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.resume(_subscribe(s, s.price(100), trial_period_days=3).id)  # not paused
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": s.customer.id})
    stripe_client.v1.customers.update(s.customer.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    resumed = stripe_client.v1.subscriptions.resume(sub.id, params={"billing_cycle_anchor": "now"})
    assert_stripe_shape(resumed)
    assert resumed.status == "active" and resumed.billing_cycle_anchor == T0 + 20 * DAY
    item = resumed["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (T0 + 20 * DAY, T0 + 51 * DAY)  # Jan 21 → Feb 21
    bill = stripe_client.v1.invoices.retrieve(resumed.latest_invoice)
    assert bill.status == "paid" and bill.amount_paid == 1500 and bill.billing_reason == "subscription_cycle"
    assert s.types("customer.subscription.resumed") == ["customer.subscription.resumed"]
    s.advance(T0 + 51 * DAY + 7200)
    paid = [i.amount_paid for i in s.invoices() if i.parent.subscription_details.subscription == sub.id]
    assert paid[-2:] == [1500, 1500]


def test_paused_subscription_resumes_on_its_old_cycle(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card=None)
    sub = _subscribe(s, s.price(800), trial_period_days=5,
                     trial_settings={"end_behavior": {"missing_payment_method": "pause"}})
    s.advance(T0 + 10 * DAY)
    assert s.subscription(sub.id).status == "paused"
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": s.customer.id})
    stripe_client.v1.subscriptions.update(sub.id, params={"default_payment_method": pm.id})
    resumed = stripe_client.v1.subscriptions.resume(sub.id, params={"billing_cycle_anchor": "unchanged"})
    assert_stripe_shape(resumed)
    item = resumed["items"].data[0]
    # The cycle anchored at the trial end (Jan 6) goes on: billed from now to Feb 6, for that time only.
    assert (item.current_period_start, item.current_period_end) == (T0 + 10 * DAY, T0 + 36 * DAY)
    assert resumed.billing_cycle_anchor == T0 + 5 * DAY
    bill = stripe_client.v1.invoices.retrieve(resumed.latest_invoice)
    assert bill.status == "paid" and bill.amount_paid == prorated(800, 26 * DAY, 31 * DAY)
    assert bill.lines.data[0].parent.subscription_item_details.proration is True
    s.advance(T0 + 36 * DAY + 7200)
    assert s.invoices()[-1].amount_paid == 800  # a whole period again from Feb 6


@pytest.mark.parametrize("behavior", ["keep_as_draft", "mark_uncollectible", "void"])
def test_pause_collection_at_renewal(stripe_client: stripe.StripeClient, behavior: str) -> None:
    s = setup(stripe_client)
    sub = _subscribe(s, s.price(1200))
    end = sub["items"].data[0].current_period_end
    resumes = end + 10 * DAY
    paused = stripe_client.v1.subscriptions.update(sub.id, params={
        "pause_collection": {"behavior": behavior, "resumes_at": resumes}})
    assert paused.pause_collection.behavior == behavior and paused.pause_collection.resumes_at == resumes
    s.advance(end + 2 * 3600)
    renewal = s.invoices()[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_paid == 0
    expected = {"keep_as_draft": "draft", "mark_uncollectible": "uncollectible", "void": "void"}[behavior]
    assert renewal.status == expected
    assert s.subscription(sub.id).status == "active"  # pausing collection is not pausing the subscription
    if behavior == "keep_as_draft":
        assert renewal.auto_advance is False and renewal.automatically_finalizes_at is None
    s.advance(resumes + 60)
    after = s.subscription(sub.id)
    assert after.pause_collection is None
    updated = [e for e in s.events() if e["type"] == "customer.subscription.updated"][-1]
    assert updated["data"]["previous_attributes"]["pause_collection"]["behavior"] == behavior
    s.advance(after["items"].data[0].current_period_end + 2 * 3600)
    assert s.invoices()[-1].status == "paid" and s.invoices()[-1].amount_paid == 1200  # collected again
