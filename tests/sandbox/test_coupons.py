import httpx
import pytest
import stripe

from tests.sandbox.billing_support import T0, setup
from tests.stripe_shapes import assert_stripe_shape

DAY = 86400


def _coupon(client: stripe.StripeClient, **params) -> stripe.Coupon:  # type: ignore[no-untyped-def]
    coupon = client.v1.coupons.create(params=params)
    assert_stripe_shape(coupon)
    return coupon


def _paid_amounts(client: stripe.StripeClient, duration: str, renewals: int, **coupon) -> list[int]:  # type: ignore[no-untyped-def]
    s = setup(client)
    price = s.price(2000)
    made = _coupon(client, duration=duration, **coupon)
    sub = client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                                 "discounts": [{"coupon": made.id}], "expand": ["discounts"]})
    assert_stripe_shape(sub)
    assert sub.discounts[0].source.coupon == made.id
    for _ in range(renewals):
        s.advance(s.subscription(sub.id)["items"].data[0].current_period_end + 7200)
    return [i.amount_paid for i in s.invoices()]


def test_percent_off_once_repeating_forever(stripe_client: stripe.StripeClient) -> None:
    assert _paid_amounts(stripe_client, "once", 2, percent_off=50) == [1000, 2000, 2000]
    assert _paid_amounts(stripe_client, "repeating", 3, percent_off=50, duration_in_months=2) == \
        [1000, 1000, 2000, 2000]
    assert _paid_amounts(stripe_client, "forever", 2, percent_off=50) == [1000, 1000, 1000]


def test_amount_off_on_invoices(stripe_client: stripe.StripeClient) -> None:
    assert _paid_amounts(stripe_client, "forever", 1, amount_off=500, currency="usd") == [1500, 1500]
    s = setup(stripe_client)
    invoice_items = stripe_client.v1.invoice_items
    item = invoice_items.create(params={"customer": s.customer.id, "amount": 800, "currency": "usd",
                                        "description": "Setup fee"})
    assert_stripe_shape(item)
    coupon = _coupon(stripe_client, amount_off=1000, currency="usd", duration="once")
    invoice = stripe_client.v1.invoices.create(params={
        "customer": s.customer.id, "pending_invoice_items_behavior": "include", "discounts": [{"coupon": coupon.id}]})
    assert_stripe_shape(invoice)
    assert invoice.subtotal == 800 and invoice.total == 0  # never below zero
    assert invoice.total_discount_amounts[0].amount == 800


def test_coupon_rules(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as both:
        stripe_client.v1.coupons.create(params={"percent_off": 10, "amount_off": 5, "currency": "usd"})
    assert both.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as months:
        stripe_client.v1.coupons.create(params={"percent_off": 10, "duration": "repeating"})
    assert months.value.param == "duration_in_months"
    limited = _coupon(stripe_client, percent_off=10, max_redemptions=1, id="ONCE-ONLY-10")
    assert limited.id == "ONCE-ONLY-10" and limited.valid
    s = setup(stripe_client)
    price = s.price(1000)
    stripe_client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                                  "discounts": [{"coupon": limited.id}]})
    again = stripe_client.v1.coupons.retrieve(limited.id)
    assert again.times_redeemed == 1 and not again.valid
    with pytest.raises(stripe.InvalidRequestError) as spent:
        stripe_client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}],
                                                      "discounts": [{"coupon": limited.id}]})
    assert spent.value.code == "coupon_expired"
    listed = stripe_client.v1.coupons.list()
    assert_stripe_shape(listed)
    deleted = stripe_client.v1.coupons.delete(limited.id)
    assert_stripe_shape(deleted)


def test_promotion_code_max_redemptions_and_expiry(stripe_client: stripe.StripeClient, sandbox) -> None:  # type: ignore[no-untyped-def]
    coupon = _coupon(stripe_client, percent_off=20, duration="forever")
    now = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": T0}).created
    promo = stripe_client.v1.promotion_codes.create(params={
        "promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SPRING20", "max_redemptions": 1,
        "expires_at": now + 3600})
    assert_stripe_shape(promo)
    assert promo.promotion.coupon == coupon.id and promo.active
    s = setup(stripe_client)
    price = s.price(1000)
    sub = stripe_client.v1.subscriptions.create(params={
        "customer": s.customer.id, "items": [{"price": price.id}], "discounts": [{"promotion_code": promo.id}],
        "expand": ["latest_invoice"]})
    assert sub.latest_invoice.amount_paid == 800
    with pytest.raises(stripe.InvalidRequestError) as used:
        stripe_client.v1.subscriptions.create(params={
            "customer": s.customer.id, "items": [{"price": price.id}], "discounts": [{"promotion_code": promo.id}]})
    assert used.value.param == "discounts[0][promotion_code]"
    found = stripe_client.v1.promotion_codes.list(params={"code": "SPRING20"})
    assert_stripe_shape(found)
    assert found.data[0].times_redeemed == 1

    expiring = stripe_client.v1.promotion_codes.create(params={
        "promotion": {"type": "coupon", "coupon": coupon.id}, "expires_at": now + 60})
    # Promotion codes expire on sandbox time (not a customer's test clock): move it past expiry.
    httpx.post(f"{sandbox.url}/_sandbox/clock/advance", json={"seconds": 120})
    with pytest.raises(stripe.InvalidRequestError) as expired:
        stripe_client.v1.subscriptions.create(params={
            "customer": s.customer.id, "items": [{"price": price.id}],
            "discounts": [{"promotion_code": expiring.id}]})
    assert expired.value.param == "discounts[0][promotion_code]"
