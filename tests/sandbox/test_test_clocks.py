import pytest
import stripe

from tests.sandbox.billing_support import T0, setup
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver

DAY = 86400


def test_three_renewals_make_three_paid_invoices_with_events_in_order(stripe_client: stripe.StripeClient) -> None:
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
        receiver.secret = endpoint.secret
        s = setup(stripe_client)
        price = s.price(2000)
        sub = stripe_client.v1.subscriptions.create(params={
            "customer": s.customer.id, "items": [{"price": price.id}], "expand": ["latest_invoice.payments"]})
        assert_stripe_shape(sub)
        assert sub.status == "active" and sub.test_clock == s.clock.id and sub.created == T0
        assert sub.latest_invoice.status == "paid" and sub.latest_invoice.amount_paid == 2000
        assert sub.latest_invoice.payments.data[0].payment.type == "payment_intent"
        for _ in range(3):
            end = s.subscription(sub.id)["items"].data[0].current_period_end
            answer = s.advance(end + 2 * 3600)  # past the hour Stripe leaves a renewal invoice in draft
            assert answer.status == "advancing"
            assert stripe_client.v1.test_helpers.test_clocks.retrieve(s.clock.id).status == "ready"
        invoices = s.invoices()
        assert [i.billing_reason for i in invoices] == ["subscription_create"] + ["subscription_cycle"] * 3
        assert all(i.status == "paid" and i.amount_paid == 2000 for i in invoices)
        assert [i.number.split("-")[1] for i in invoices] == ["0001", "0002", "0003", "0004"]
        # periods follow the calendar month: Feb 1, Mar 1, Apr 1, May 1
        assert [i.lines.data[0].period.start for i in invoices] == [T0, 1769904000, 1772323200, 1775001600]
        assert invoices[1].parent.subscription_details.subscription == sub.id
        final = s.subscription(sub.id)
        assert final["items"].data[0].current_period_end == 1777593600

        received = s.types("invoice.", "customer.subscription.")
        for recorded in s.events():  # every event reaches the endpoint, signed, with Stripe's shapes
            event = receiver.wait_for(recorded["type"], where=lambda e, i=recorded["id"]: e["id"] == i)
            assert_stripe_shape(event["data"]["object"])
        assert received[:6] == ["customer.subscription.created", "invoice.created", "invoice.finalized",
                                "invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]
        cycle = ["invoice.upcoming", "customer.subscription.updated", "invoice.created", "invoice.finalized",
                 "invoice.paid", "invoice.payment_succeeded"]
        assert received[6:] == cycle * 3, received
        updated = [e for e in s.events() if e["type"] == "customer.subscription.updated"][1]
        assert "items" in updated["data"]["previous_attributes"]


def test_advance_rules_and_delete(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    price = s.price(500, interval="week")
    stripe_client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}]})
    with pytest.raises(stripe.InvalidRequestError) as backwards:
        s.advance(T0 - 1)
    assert backwards.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        s.advance(T0 + 15 * DAY)  # more than two weekly intervals
    assert too_far.value.param == "frozen_time"
    s.advance(T0 + 14 * DAY)
    assert len(s.invoices()) == 3
    clocks = stripe_client.v1.test_helpers.test_clocks.list()
    assert_stripe_shape(clocks)
    deleted = stripe_client.v1.test_helpers.test_clocks.delete(s.clock.id)
    assert_stripe_shape(deleted)
    with pytest.raises(stripe.InvalidRequestError) as gone:
        stripe_client.v1.customers.retrieve(s.customer.id)
    assert gone.value.http_status == 404


def test_deleting_a_clock_deletes_its_subscription_schedules(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    sub = stripe_client.v1.subscriptions.create(params={"customer": s.customer.id,
                                                        "items": [{"price": s.price(900).id}]})
    schedule = stripe_client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    assert_stripe_shape(schedule)
    assert schedule.test_clock == s.clock.id
    stripe_client.v1.test_helpers.test_clocks.delete(s.clock.id)
    for gone in (lambda: stripe_client.v1.subscription_schedules.retrieve(schedule.id),
                 lambda: stripe_client.v1.subscriptions.retrieve(sub.id)):
        with pytest.raises(stripe.InvalidRequestError) as err:
            gone()
        assert err.value.http_status == 404
