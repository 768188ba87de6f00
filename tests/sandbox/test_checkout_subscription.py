"""Checkout in subscription mode and discounts in Checkout: SDK calls, the hosted page's forms over HTTP."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape

SUCCESS = "https://shop.example/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://shop.example/cancel"


def _plan(client: stripe.StripeClient, amount: int = 999, interval: str = "month", name: str = "Pro plan",
          **recurring: Any) -> stripe.Price:
    product = client.v1.products.create(params={"name": name})
    assert_stripe_shape(product)
    price = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": amount,
                                            "recurring": {"interval": interval, **recurring}})
    assert_stripe_shape(price)
    return price


def _session(client: stripe.StripeClient, price: stripe.Price | None = None, **params: Any) -> stripe.checkout.Session:
    params.setdefault("mode", "subscription")
    if "line_items" not in params:
        params["line_items"] = [{"price": (price or _plan(client)).id, "quantity": 1}]
    params.setdefault("success_url", SUCCESS)
    params.setdefault("cancel_url", CANCEL)
    session = client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert_stripe_shape(session)
    return session


def _card(number: str = "4242 4242 4242 4242", **extra: str) -> dict[str, str]:
    return {"email": "subscriber@example.com", "cardNumber": number, "cardExpiry": "12 / 34", "cardCvc": "123",
            "billingName": "Katherine Johnson", **extra}


def _events(client: stripe.StripeClient, *ids: str, limit: int = 100) -> list[dict[str, Any]]:
    """Recent events about these objects (by id, or by the customer they belong to), oldest first."""
    page = client.v1.events.list(params={"limit": limit})
    assert_stripe_shape(page)
    out = []
    for event in reversed(page.data):
        obj = event.to_dict()["data"]["object"]
        if obj.get("id") in ids or obj.get("customer") in ids:
            assert_stripe_shape(obj)
            out.append(event.to_dict())
    return out


def _subsequence(wanted: list[str], types: list[str]) -> bool:
    it = iter(types)
    return all(t in it for t in wanted)


def _now(sandbox: SandboxServer) -> int:
    return int(control(sandbox, "POST", "/_sandbox/clock/advance", seconds=0)["now"])


def test_subscription_session_paid_on_the_hosted_page(stripe_client: stripe.StripeClient) -> None:
    price = _plan(stripe_client)
    session = _session(stripe_client, price, subscription_data={"metadata": {"plan": "pro"},
                                                                "description": "Pro, monthly"},
                       metadata={"order": "s-1"})
    assert (session.mode, session.status, session.payment_status) == ("subscription", "open", "unpaid")
    assert session.amount_subtotal == session.amount_total == 999 and session.currency == "usd"
    assert session.subscription is None and session.invoice is None and session.payment_intent is None
    assert session.total_details.amount_discount == 0 and session.payment_method_collection == "always"

    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Subscribe to Pro plan" in page.text and "$9.99 per month" in page.text
    assert re.search(r'<button type="submit" class="pay">\s*Subscribe\s*</button>', page.text)
    assert 'for="promotionCode"' not in page.text  # promotion codes were not allowed

    answer = httpx.post(session.url, data=_card())
    assert answer.status_code == 303
    assert answer.headers["location"] == f"https://shop.example/success?session_id={session.id}"

    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription", "invoice", "customer"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status, done.url) == ("complete", "paid", None)
    sub, invoice, customer = done.subscription, done.invoice, done.customer
    assert sub.status == "active" and sub.customer == customer.id
    assert sub.metadata.to_dict() == {"plan": "pro"} and sub.description == "Pro, monthly"
    assert sub.items.data[0].price.id == price.id and sub.latest_invoice == invoice.id
    assert invoice.status == "paid" and invoice.amount_paid == 999 and invoice.billing_reason == "subscription_create"
    assert customer.email == "subscriber@example.com" and customer.name == "Katherine Johnson"
    pm_id = customer.invoice_settings.default_payment_method
    assert pm_id and sub.default_payment_method == pm_id
    pm = stripe_client.v1.payment_methods.retrieve(pm_id)
    assert_stripe_shape(pm)
    assert pm.customer == customer.id and pm.card.last4 == "4242"
    assert done.customer_details.email == "subscriber@example.com"

    by_sub = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id})
    assert_stripe_shape(by_sub)
    assert [s.id for s in by_sub.data] == [session.id]

    types = [e["type"] for e in _events(stripe_client, session.id, customer.id, sub.id, invoice.id)]
    assert _subsequence(["payment_method.attached", "customer.updated", "customer.subscription.created",
                         "invoice.created", "invoice.finalized", "payment_intent.succeeded", "invoice.paid",
                         "invoice.payment_succeeded", "customer.subscription.updated",
                         "checkout.session.completed"], types), types
    assert types[-1] == "checkout.session.completed" and types.count("checkout.session.completed") == 1
    completed = [e for e in _events(stripe_client, session.id) if e["type"] == "checkout.session.completed"][0]
    obj = completed["data"]["object"]
    assert (obj["subscription"], obj["invoice"], obj["payment_status"]) == (sub.id, invoice.id, "paid")


def test_decline_leaves_the_session_open_and_a_retry_pays_the_same_subscription(
        stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    declined = httpx.post(session.url, data=_card("4000000000000002"))
    assert declined.status_code == 402
    assert re.search(r'role="alert"[^>]*>\s*Your card was declined.', declined.text)
    still = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert_stripe_shape(still)
    assert (still.status, still.payment_status, still.subscription) == ("open", "unpaid", None)

    paid = httpx.post(session.url, data=_card())
    assert paid.status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert_stripe_shape(done)
    assert done.status == "complete" and done.subscription.status == "active"
    subs = stripe_client.v1.subscriptions.list(params={"customer": done.customer, "status": "all"})
    assert_stripe_shape(subs)
    assert [s.id for s in subs.data] == [done.subscription.id]  # the declined attempt's subscription, paid
    invoices = stripe_client.v1.invoices.list(params={"customer": done.customer})
    assert_stripe_shape(invoices)
    assert [(i.status, i.attempt_count) for i in invoices.data] == [("paid", 2)]
    assert done.subscription.default_payment_method != None  # noqa: E711 - the second card
    pm = stripe_client.v1.payment_methods.retrieve(done.subscription.default_payment_method)
    assert_stripe_shape(pm)
    assert pm.card.last4 == "4242"


def test_three_d_secure_then_complete(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    from stripe_sandbox.resources import payment_intents

    session = _session(stripe_client)
    answer = httpx.post(session.url, data=_card("4000002760003184"))
    assert answer.status_code == 303 and "/authorize/" in answer.headers["location"]
    pi_id = answer.headers["location"].split("/authorize/")[1].split("?")[0]

    def approve() -> None:
        sb = sandbox.sandbox
        payment_intents.finish_authentication(sb, sb.store.get(pi_id), True)

    sandbox.call(approve)
    back = httpx.get(f"{session.url}/return")
    assert back.status_code == 303 and back.headers["location"].endswith(f"session_id={session.id}")
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status, done.subscription.status) == ("complete", "paid", "active")


def test_trial(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, subscription_data={"trial_period_days": 14})
    assert session.amount_total == 0 and session.amount_subtotal == 0
    page = httpx.get(session.url)
    assert "14 days free" in page.text and "then $9.99 per month after 14-day trial" in page.text
    assert 'id="cardNumber"' in page.text  # a card is collected by default, for when the trial ends
    answer = httpx.post(session.url, data=_card())
    assert answer.status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription", "invoice"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    sub = done.subscription
    assert sub.status == "trialing" and sub.trial_end - sub.trial_start == 14 * 86400
    assert sub.default_payment_method is not None
    assert done.invoice.amount_due == 0 and done.invoice.status == "paid"


def test_trial_without_a_card_when_payment_method_collection_is_if_required(
        stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, subscription_data={"trial_period_days": 7},
                       payment_method_collection="if_required", customer_email="nocard@example.com")
    assert session.payment_method_collection == "if_required"
    page = httpx.get(session.url)
    assert 'id="cardNumber"' not in page.text and "No card is needed today." in page.text
    answer = httpx.post(session.url, data={"billingName": "No Card"})
    assert answer.status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription", "customer"]})
    assert_stripe_shape(done)
    assert done.subscription.status == "trialing" and done.subscription.default_payment_method is None
    assert done.customer.email == "nocard@example.com"
    assert done.customer.invoice_settings.default_payment_method is None


def _promotion_code(client: stripe.StripeClient, code: str, **params: Any) -> stripe.PromotionCode:
    coupon = client.v1.coupons.create(params={"percent_off": 20, "duration": "forever"})
    assert_stripe_shape(coupon)
    promo = client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": coupon.id},
                                                     "code": code, **params})
    assert_stripe_shape(promo)
    return promo


def test_promotion_code_typed_on_the_page() -> None:
    with private_sandbox() as (server, client):
        code = f"SAVE20{secrets.token_hex(2).upper()}"
        promo = _promotion_code(client, code)
        used_up = _promotion_code(client, "ONCE" + code, max_redemptions=1)
        expiring = _promotion_code(client, "SOON" + code, expires_at=_now(server) + 3600)
        session = _session(client, allow_promotion_codes=True)
        # Someone else redeems the one-use code first.
        other = _session(client, discounts=[{"promotion_code": used_up.id}])
        assert other.amount_total == 799 and other.total_details.amount_discount == 200
        assert httpx.post(other.url, data=_card(email="first@example.com")).status_code == 303
        control(server, "POST", "/_sandbox/clock/advance", seconds=3601)

        page = httpx.get(session.url)
        assert '<label for="promotionCode">Promotion code</label>' in page.text
        action = f"{session.url}/promotion_code"
        for typed, why in (("NOPE", "This code is invalid."), ("ONCE" + code, "used the maximum number of times"),
                           ("SOON" + code, "This code has expired.")):
            refused = httpx.post(action, data={"promotionCode": typed})
            assert refused.status_code == 400 and why in refused.text, typed
            assert 'aria-describedby="promotionCode-error"' in refused.text
        assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 999

        applied = httpx.post(action, data={"promotionCode": code.lower()})  # codes are case-insensitive
        assert applied.status_code == 200
        assert f"Promotion code <strong>{code}</strong> applied" in applied.text
        assert re.search(r'data-testid="due">\$7\.99<', applied.text)
        fetched = client.v1.checkout.sessions.retrieve(session.id)
        assert_stripe_shape(fetched)
        assert fetched.amount_subtotal == 999 and fetched.amount_total == 799
        assert fetched.total_details.amount_discount == 200
        assert fetched.discounts[0].promotion_code == promo.id and fetched.discounts[0].coupon is not None

        assert httpx.post(session.url, data=_card()).status_code == 303
        done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription", "invoice"]})
        assert_stripe_shape(done)
        assert done.invoice.amount_paid == 799 and done.invoice.total_discount_amounts[0].amount == 200
        assert len(done.subscription.discounts) == 1
        with_discounts = client.v1.subscriptions.retrieve(done.subscription.id, params={"expand": ["discounts"]})
        assert_stripe_shape(with_discounts)
        discount = with_discounts.discounts[0]
        assert discount.promotion_code == promo.id and discount.subscription == done.subscription.id
        counted = client.v1.promotion_codes.retrieve(promo.id)
        assert_stripe_shape(counted)
        assert counted.times_redeemed == 1
        assert expiring.id  # kept for the record: refused above once the clock passed its expiry


def test_discounts_in_payment_mode(stripe_client: stripe.StripeClient) -> None:
    coupon = stripe_client.v1.coupons.create(params={"amount_off": 300, "currency": "usd", "duration": "once"})
    product = stripe_client.v1.products.create(params={"name": "Credits"})
    price = stripe_client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 1000})
    for obj in (coupon, product, price):
        assert_stripe_shape(obj)
    session = _session(stripe_client, mode="payment", discounts=[{"coupon": coupon.id}],
                       line_items=[{"price": price.id, "quantity": 2}])
    assert session.amount_subtotal == 2000 and session.amount_total == 1700
    assert session.total_details.amount_discount == 300 and session.discounts[0].coupon == coupon.id
    items = stripe_client.v1.checkout.sessions.line_items.list(session.id)
    assert_stripe_shape(items)
    assert (items.data[0].amount_discount, items.data[0].amount_total) == (300, 1700)
    page = httpx.get(session.url)
    assert "Pay $17.00" in page.text and re.search(r'data-testid="discount">-\$3\.00<', page.text)
    assert httpx.post(session.url, data=_card()).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(done)
    assert done.payment_intent.amount == 1700 and done.payment_status == "paid"
    redeemed = stripe_client.v1.coupons.retrieve(coupon.id)
    assert_stripe_shape(redeemed)
    assert redeemed.times_redeemed == 1


def test_refusals(stripe_client: stripe.StripeClient) -> None:
    price = _plan(stripe_client)
    items = [{"price": price.id, "quantity": 1}]

    def refused(**params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.checkout.sessions.create(params={  # type: ignore[arg-type]
                "mode": "subscription", "success_url": SUCCESS, "line_items": items, **params})
        assert err.value.http_status == 400
        return err.value

    for i, method in enumerate(("alipay", "grabpay", "fpx", "paynow")):
        one_time = refused(payment_method_types=["card", method])
        assert one_time.param == "payment_method_types[1]" and method in one_time.user_message
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 10})
    assert_stripe_shape(coupon)
    both = refused(discounts=[{"coupon": coupon.id}], allow_promotion_codes=True)
    assert both.param == "discounts"
    yearly = _plan(stripe_client, interval="year")
    mixed = refused(line_items=[*items, {"price": yearly.id, "quantity": 1}])
    assert mixed.param == "line_items"
    trial_param = refused(subscription_data={"trial_period_days": 7, "trial_end": 4102444800})
    assert trial_param.param == "subscription_data[trial_end]"
    in_payment = refused(mode="payment", subscription_data={"trial_period_days": 7},
                         line_items=[{"price_data": {"currency": "usd", "unit_amount": 100,
                                                     "product_data": {"name": "x"}}, "quantity": 1}])
    assert in_payment.param == "subscription_data"
    # sepa_debit recurs: accepted, like card
    ok = _session(stripe_client, price, payment_method_types=["card", "sepa_debit"])
    assert ok.payment_method_types == ["card", "sepa_debit"]


def test_price_data_with_recurring(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, line_items=[{"quantity": 2, "price_data": {
        "currency": "usd", "unit_amount": 500, "recurring": {"interval": "week"},
        "product_data": {"name": "Weekly box"}}}])
    assert session.amount_total == 1000
    page = httpx.get(session.url)
    assert "$5.00 per week" in page.text and "$10.00 per week" in page.text
    assert httpx.post(session.url, data=_card()).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert_stripe_shape(done)
    item = done.subscription.items.data[0]
    assert item.quantity == 2 and item.price.recurring.interval == "week" and item.price.active is False
    archived = stripe_client.v1.prices.retrieve(item.price.id)
    assert_stripe_shape(archived)
    assert archived.active is False  # archived, as Stripe makes them
