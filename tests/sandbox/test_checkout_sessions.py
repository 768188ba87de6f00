"""Checkout Sessions through the SDK, and the hosted page's form POST over plain HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.control import control
from tests.stripe_shapes import assert_stripe_shape

SUCCESS = "https://shop.example/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://shop.example/cancel"


def _price(client: stripe.StripeClient, amount: int = 999, currency: str = "usd",
           **extra: Any) -> stripe.Price:
    product = client.v1.products.create(params={"name": "Credits pack", "description": "100 credits"})
    assert_stripe_shape(product)
    price = client.v1.prices.create(params={"product": product.id, "currency": currency,
                                            "unit_amount": amount, **extra})
    assert_stripe_shape(price)
    return price


def _now(sandbox: SandboxServer) -> int:
    """The sandbox's clock, which other tests may have advanced past real time."""
    return int(control(sandbox, "POST", "/_sandbox/clock/advance", seconds=0)["now"])


def _session(client: stripe.StripeClient, **params: Any) -> stripe.checkout.Session:
    if "line_items" not in params and params.get("mode", "payment") == "payment":
        params["line_items"] = [{"price": _price(client).id, "quantity": 1}]
    params.setdefault("mode", "payment")
    params.setdefault("success_url", SUCCESS)
    params.setdefault("cancel_url", CANCEL)
    session = client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert_stripe_shape(session)
    return session


def test_create_payment_session(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    price = _price(stripe_client)
    before = _now(sandbox)
    session = _session(stripe_client, line_items=[
        {"price": price.id, "quantity": 2},
        {"price_data": {"currency": "usd", "unit_amount": 250,
                        "product_data": {"name": "Gift wrap", "metadata": {"k": "v"}}}, "quantity": 1},
    ], client_reference_id="order-7", metadata={"order": "7"}, customer_email="ada@example.com",
        payment_intent_data={"metadata": {"order": "7"}, "description": "Order 7"},
        allow_promotion_codes=True, locale="en", submit_type="pay", billing_address_collection="auto")
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert session.url == f"{sandbox.url}/c/pay/{session.id}"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert session.amount_subtotal == session.amount_total == 2 * 999 + 250 and session.currency == "usd"
    assert session.payment_intent is None and session.customer is None
    assert session.success_url == SUCCESS  # the placeholder is kept as given
    assert session.client_reference_id == "order-7" and session.metadata.to_dict() == {"order": "7"}
    assert session.customer_email == "ada@example.com" and session.allow_promotion_codes is True
    assert before + 24 * 3600 <= session.expires_at <= _now(sandbox) + 24 * 3600
    assert session.payment_method_types == ["card"]


def test_retrieve_expand_and_line_items(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "exp@example.com"})
    prices = [_price(stripe_client, amount=100 * (i + 1)) for i in range(12)]
    session = _session(stripe_client, customer=customer.id,
                       line_items=[{"price": p.id, "quantity": 1} for p in prices])
    assert session.customer == customer.id

    fetched = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items", "customer", "line_items.data.price.product"]})
    assert_stripe_shape(fetched)
    assert fetched.customer.id == customer.id
    items = fetched.line_items
    assert len(items.data) == 10 and items.has_more is True
    assert items.url == f"/v1/checkout/sessions/{session.id}/line_items"
    first = items.data[0]
    assert first.object == "item" and first.id.startswith("li_") and first.price.id == prices[0].id
    assert first.description == "Credits pack" and first.price.product.name == "Credits pack"
    assert first.amount_total == 100 and first.quantity == 1

    page = stripe_client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 5})
    assert_stripe_shape(page)
    assert [li.price.id for li in page.data] == [p.id for p in prices[:5]] and page.has_more
    rest = stripe_client.v1.checkout.sessions.line_items.list(
        session.id, params={"limit": 100, "starting_after": page.data[-1].id})
    assert_stripe_shape(rest)
    assert [li.price.id for li in rest.data] == [p.id for p in prices[5:]] and not rest.has_more
    every = list(stripe_client.v1.checkout.sessions.line_items.list(session.id).auto_paging_iter())
    assert len(every) == 12

    plain = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert_stripe_shape(plain)
    assert "line_items" not in plain.last_response.data


def test_list_filters(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "lister@example.com"})
    made = [_session(stripe_client, customer=customer.id).id for _ in range(3)]
    page = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id, "limit": 2})
    assert_stripe_shape(page)
    assert [s.id for s in page.data] == made[::-1][:2] and page.has_more
    stripe_client.v1.checkout.sessions.expire(made[0])
    expired = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id, "status": "expired"})
    assert_stripe_shape(expired)
    assert [s.id for s in expired.data] == [made[0]]
    opened = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id, "status": "open"})
    assert [s.id for s in opened.data] == made[::-1][:2]
    none = stripe_client.v1.checkout.sessions.list(params={"payment_intent": "pi_none"})
    assert_stripe_shape(none)
    assert none.data == []


def test_expire(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    session = _session(stripe_client)
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert_stripe_shape(expired)
    assert expired.status == "expired" and expired.url is None and expired.payment_status == "unpaid"
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.checkout.sessions.expire(session.id)
    assert again.value.http_status == 400
    events = stripe_client.v1.events.list(params={"type": "checkout.session.expired", "limit": 5})
    assert_stripe_shape(events)
    event = next(e for e in events.data if e.data.object["id"] == session.id)
    assert_stripe_shape(event.data.object.to_dict())
    page = httpx.get(f"{sandbox.url}/c/pay/{session.id}")
    assert page.status_code == 200 and "expired" in page.text and "<form" not in page.text


def test_update_merges_metadata_at_any_status(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, metadata={"order": "o-1", "step": "cart"})
    updated = stripe_client.v1.checkout.sessions.update(session.id, params={"metadata": {"step": "", "note": "vip"}})
    assert updated.metadata.to_dict() == {"order": "o-1", "note": "vip"}
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).metadata.to_dict() == {"order": "o-1",
                                                                                           "note": "vip"}
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    cleared = stripe_client.v1.checkout.sessions.update(expired.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {} and cleared.status == "expired"
    listed = stripe_client.v1.events.list(params={"limit": 20})
    assert "checkout.session.updated" not in {e.type for e in listed.data}  # Stripe has no such event

    with pytest.raises(stripe.InvalidRequestError) as hosted_only:
        stripe_client.v1.checkout.sessions.update(session.id, params={
            "collected_information": {"shipping_details": {"name": "Ada", "address": {"country": "GB"}}}})
    assert hosted_only.value.http_status == 400 and hosted_only.value.param == "collected_information"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.checkout.sessions.update(
            session.id, params={"success_url": "https://x.example"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "success_url"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.checkout.sessions.update("cs_test_missing", params={"metadata": {"a": "b"}})
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


def test_expires_automatically_when_the_clock_passes_expires_at(
        stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    now = _now(sandbox)
    session = _session(stripe_client, expires_at=now + 3600)
    assert session.expires_at == now + 3600
    control(sandbox, "POST", "/_sandbox/clock/advance", seconds=1800)
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    control(sandbox, "POST", "/_sandbox/clock/advance", seconds=1801)
    fetched = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert_stripe_shape(fetched)
    assert fetched.status == "expired" and fetched.url is None


def test_validation_errors(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    sessions = stripe_client.v1.checkout.sessions
    price = _price(stripe_client)
    line_items = [{"price": price.id, "quantity": 1}]

    def refused(**params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            sessions.create(params=params)  # type: ignore[arg-type]
        assert err.value.http_status in (400, 404)
        return err.value

    missing = refused(mode="payment", line_items=line_items)
    assert missing.http_status == 400 and missing.param == "success_url"

    eur = _price(stripe_client, currency="eur")
    mixed = refused(mode="payment", success_url=SUCCESS,
                    line_items=[*line_items, {"price": eur.id, "quantity": 1}])
    assert mixed.http_status == 400 and mixed.param == "line_items" and "currency" in mixed.user_message

    unknown = refused(mode="payment", success_url=SUCCESS,
                      line_items=[{"price": "price_nope", "quantity": 1}])
    assert unknown.http_status == 404 and unknown.code == "resource_missing"
    assert unknown.param == "line_items[0][price]"

    recurring = _price(stripe_client, recurring={"interval": "month"})
    wrong_mode = refused(mode="payment", success_url=SUCCESS,
                         line_items=[{"price": recurring.id, "quantity": 1}])
    assert wrong_mode.param == "line_items[0][price]" and "recurring" in wrong_mode.user_message

    one_time_in_subscription = refused(mode="subscription", success_url=SUCCESS, line_items=line_items)
    assert one_time_in_subscription.param == "line_items[0][price]"
    assert "recurring prices only" in one_time_in_subscription.user_message

    no_items = refused(mode="payment", success_url=SUCCESS)
    assert no_items.param == "line_items"
    no_quantity = refused(mode="payment", success_url=SUCCESS, line_items=[{"price": price.id}])
    assert no_quantity.param == "line_items[0][quantity]"
    no_amount = refused(mode="payment", success_url=SUCCESS,
                        line_items=[{"price_data": {"currency": "usd", "product_data": {"name": "x"}},
                                     "quantity": 1}])
    assert no_amount.param == "line_items[0][price_data][unit_amount]"
    now = _now(sandbox)
    too_soon = refused(mode="payment", success_url=SUCCESS, line_items=line_items, expires_at=now + 600)
    too_late = refused(mode="payment", success_url=SUCCESS, line_items=line_items, expires_at=now + 25 * 3600)
    assert too_soon.param == too_late.param == "expires_at"
    unknown_customer = refused(mode="payment", success_url=SUCCESS, line_items=line_items,
                               customer="cus_nope")
    assert unknown_customer.http_status == 404 and unknown_customer.param == "customer"
    bad_mode = refused(mode="donation", success_url=SUCCESS, line_items=line_items)
    assert bad_mode.param == "mode"


def test_price_data_with_existing_product_and_zero_decimal_currency(
        stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    product = stripe_client.v1.products.create(params={"name": "Ramen"})
    session = _session(stripe_client, line_items=[
        {"price_data": {"currency": "jpy", "unit_amount": 1200, "product": product.id}, "quantity": 3}])
    assert session.currency == "jpy" and session.amount_total == 3600
    items = stripe_client.v1.checkout.sessions.line_items.list(session.id)
    assert_stripe_shape(items)
    assert items.data[0].price.product == product.id and items.data[0].price.type == "one_time"
    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Pay ¥3,600" in page.text and "¥1,200" in page.text and "¥3,600.00" not in page.text


def test_hosted_page_is_accessible_html(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, customer_email="locked@example.com")
    page = httpx.get(session.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Test mode" in html and "Pay $9.99" in html and "Credits pack" in html
    assert f'href="{CANCEL}"' in html and ">&larr; Back<" in html
    for name, autocomplete in (("email", "email"), ("cardNumber", "cc-number"), ("cardExpiry", "cc-exp"),
                               ("cardCvc", "cc-csc"), ("billingName", "cc-name")):
        assert f'<label for="{name}">' in html
        assert re.search(rf'<input id="{name}"[^>]*autocomplete="{autocomplete}"', html), name
    assert re.search(r'<input id="email"[^>]*value="locked@example.com"[^>]*readonly', html)
    assert httpx.get(session.url.replace(session.id, "cs_test_missing")).status_code == 404


def test_form_validation_errors_show_next_to_fields(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    answer = httpx.post(session.url, data={"email": "nope", "cardNumber": "", "cardExpiry": "13 / 30",
                                           "cardCvc": "", "billingName": ""})
    assert answer.status_code == 400
    html = answer.text
    assert 'id="cardNumber-error"' in html and "Your card number is incomplete." in html
    assert 'id="cardExpiry-error"' in html and 'id="email-error"' in html and 'id="cardCvc-error"' in html
    assert 'aria-invalid="true" aria-describedby="billingName-error"' in html
    past = httpx.post(session.url, data={"email": "a@example.com", "cardNumber": "4242 4242 4242 4242",
                                         "cardExpiry": "01 / 20", "cardCvc": "123", "billingName": "Ada"})
    assert past.status_code == 400 and "in the past" in past.text
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_setup_mode_session(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, mode="setup", currency="usd",
                       setup_intent_data={"metadata": {"purpose": "card on file"}})
    assert session.mode == "setup" and session.payment_status == "no_payment_required"
    assert session.amount_total is None and session.setup_intent is None
    page = httpx.get(session.url)
    assert "Save card" in page.text


def _card(number: str = "4242 4242 4242 4242", **extra: str) -> dict[str, str]:
    return {"email": "payer@example.com", "cardNumber": number, "cardExpiry": "12 / 34", "cardCvc": "123",
            "billingName": "Grace Hopper", **extra}


def test_setup_mode_saves_the_card(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, mode="setup", currency="usd",
                       setup_intent_data={"metadata": {"purpose": "card on file"}})
    answer = httpx.post(session.url, data=_card())
    assert answer.status_code == 303
    assert answer.headers["location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", session.id)
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["setup_intent"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    si = done.setup_intent
    assert si.status == "succeeded" and si.customer == done.customer and si.usage == "off_session"
    assert si.metadata.to_dict() == {"purpose": "card on file"}
    methods = stripe_client.v1.payment_methods.list(params={"customer": done.customer, "type": "card"})
    assert_stripe_shape(methods)
    assert [pm.id for pm in methods.data] == [si.payment_method]
    assert methods.data[0].card.last4 == "4242" and methods.data[0].billing_details.name == "Grace Hopper"
    listed = stripe_client.v1.setup_intents.list(params={"customer": done.customer})
    assert_stripe_shape(listed)
    assert [s.id for s in listed.data] == [si.id]


def test_setup_intents_api(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "si@example.com"})
    si = stripe_client.v1.setup_intents.create(params={"customer": customer.id, "metadata": {"a": "1"}})
    assert_stripe_shape(si)
    assert si.id.startswith("seti_") and si.status == "requires_payment_method"
    assert si.client_secret.startswith(si.id + "_secret_")
    confirmed = stripe_client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    assert_stripe_shape(confirmed)
    assert confirmed.status == "succeeded" and confirmed.payment_method.startswith("pm_")
    pm = stripe_client.v1.payment_methods.retrieve(confirmed.payment_method)
    assert_stripe_shape(pm)
    assert pm.customer == customer.id
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.setup_intents.cancel(si.id)
    other = stripe_client.v1.setup_intents.create(params={})
    canceled = stripe_client.v1.setup_intents.cancel(other.id, params={"cancellation_reason": "abandoned"})
    assert_stripe_shape(canceled)
    assert canceled.status == "canceled" and canceled.cancellation_reason == "abandoned"
    fetched = stripe_client.v1.setup_intents.retrieve(si.id)
    assert_stripe_shape(fetched)
    types = [e.type for e in stripe_client.v1.events.list(params={"limit": 20}).data
             if e.data.object["id"] == si.id]
    assert types == ["setup_intent.succeeded", "setup_intent.created"]


def test_refused_card_number_is_shown_next_to_the_field(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    answer = httpx.post(session.url, data=_card("4242 4242 4242 4241"))
    assert answer.status_code in (400, 402)
    assert 'id="cardNumber-error"' in answer.text and "Your card number is incorrect." in answer.text
    fetched = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.status == "open" and fetched.payment_intent is None


def _events_for(client: stripe.StripeClient, object_id: str, limit: int = 40) -> list[str]:
    """Types of the recent events about one object, oldest first."""
    events = client.v1.events.list(params={"limit": limit})
    assert_stripe_shape(events)
    return [e.type for e in reversed(events.data) if e.data.object["id"] == object_id]


def test_pay_over_http_completes_the_session(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, metadata={"order": "42"}, client_reference_id="user-9",
                       payment_intent_data={"metadata": {"order": "42"}, "description": "Order 42",
                                            "receipt_email": "receipts@example.com"})
    answer = httpx.post(session.url, data=_card(email="Payer.One@example.com"))
    assert answer.status_code == 303
    assert answer.headers["location"] == f"https://shop.example/success?session_id={session.id}"

    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent", "customer", "payment_intent.latest_charge"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status, done.url) == ("complete", "paid", None)
    assert done.success_url == SUCCESS and done.client_reference_id == "user-9"
    pi = done.payment_intent
    assert pi.status == "succeeded" and pi.amount == done.amount_total == 999 and pi.currency == "usd"
    assert pi.metadata.to_dict() == {"order": "42"} and pi.description == "Order 42"
    assert pi.receipt_email == "receipts@example.com"
    assert pi.latest_charge.status == "succeeded" and pi.latest_charge.amount == 999
    assert done.customer.email == "Payer.One@example.com" and done.customer.name == "Grace Hopper"
    assert pi.customer == done.customer.id
    details = done.customer_details
    assert details.email == "Payer.One@example.com" and details.name == "Grace Hopper"

    by_pi = stripe_client.v1.checkout.sessions.list(params={"payment_intent": pi.id})
    assert_stripe_shape(by_pi)
    assert [s.id for s in by_pi.data] == [session.id]
    by_email = stripe_client.v1.checkout.sessions.list(
        params={"customer_details": {"email": "Payer.One@example.com"}, "status": "complete"})
    assert [s.id for s in by_email.data] == [session.id]
    by_customer = stripe_client.v1.checkout.sessions.list(params={"customer": done.customer.id})
    assert [s.id for s in by_customer.data] == [session.id]

    assert _events_for(stripe_client, session.id) == ["checkout.session.completed"]
    completed = stripe_client.v1.events.list(params={"type": "checkout.session.completed", "limit": 5})
    event = next(e for e in completed.data if e.data.object["id"] == session.id)
    assert_stripe_shape(event.data.object.to_dict())
    assert event.data.object["payment_status"] == "paid"

    # A completed session can neither be paid again nor expired.
    again = httpx.post(session.url, data=_card())
    assert again.status_code == 200 and "<form" not in again.text and "complete" in again.text
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.expire(session.id)


def test_decline_keeps_the_session_open_and_the_intent_for_a_retry(
        stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    declined = httpx.post(session.url, data=_card("4000000000000002"))
    assert declined.status_code == 402
    assert re.search(r'role="alert"[^>]*>\s*Your card was declined.', declined.text)
    assert 'value="payer@example.com"' in declined.text  # what was typed is kept
    still = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(still)
    assert still.status == "open" and still.payment_status == "unpaid" and still.url == session.url
    assert still.payment_intent.status == "requires_payment_method"
    assert still.payment_intent.last_payment_error.code == "card_declined"

    poor = httpx.post(session.url, data=_card("4000000000009995"))
    assert poor.status_code == 402 and "Your card has insufficient funds." in poor.text
    paid = httpx.post(session.url, data=_card())
    assert paid.status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert_stripe_shape(done)
    assert done.status == "complete" and done.payment_intent == still.payment_intent.id
    customers = stripe_client.v1.customers.list(params={"email": "payer@example.com", "limit": 100})
    assert sum(1 for c in customers.data if c.id == done.customer) == 1


def test_three_d_secure_redirects_and_returns(stripe_client: stripe.StripeClient,
                                              sandbox: SandboxServer) -> None:
    from stripe_sandbox.resources import payment_intents

    def authenticate(pi_id: str, approved: bool) -> None:
        # What the 3-D Secure page's "Complete" / "Fail" buttons do; this test drives the Checkout side.
        sb = sandbox.sandbox
        payment_intents.finish_authentication(sb, sb.store.get(pi_id), approved)

    session = _session(stripe_client)
    answer = httpx.post(session.url, data=_card("4000002760003184"))
    assert answer.status_code == 303
    pi_id = stripe_client.v1.checkout.sessions.retrieve(session.id).payment_intent
    pi = stripe_client.v1.payment_intents.retrieve(pi_id)
    assert_stripe_shape(pi)
    assert pi.status == "requires_action"
    assert answer.headers["location"] == pi.next_action.redirect_to_url.url
    return_url = pi.next_action.redirect_to_url.return_url
    assert return_url == f"{session.url}/return"

    sandbox.call(authenticate, pi_id, False)
    failed = httpx.get(return_url)
    assert failed.status_code == 402 and 'role="alert"' in failed.text
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"

    again = httpx.post(session.url, data=_card("4000002760003184"))
    assert again.status_code == 303
    sandbox.call(authenticate, pi_id, True)
    back = httpx.get(return_url)
    assert back.status_code == 303 and back.headers["location"].endswith(f"session_id={session.id}")
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(done)
    assert (done.status, done.payment_status, done.payment_intent.status) == ("complete", "paid", "succeeded")


def test_customer_creation_if_required_pays_as_a_guest(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, customer_creation="if_required")
    assert session.customer_creation == "if_required"
    assert httpx.post(session.url, data=_card()).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(done)
    assert done.status == "complete" and done.customer is None and done.payment_intent.customer is None
    assert done.customer_details.email == "payer@example.com"


def test_existing_customer_pays_with_locked_email(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "owner@example.com", "name": "Owner"})
    session = _session(stripe_client, customer=customer.id)
    page = httpx.get(session.url).text
    assert re.search(r'<input id="email"[^>]*value="owner@example.com"[^>]*readonly', page)
    assert httpx.post(session.url, data=_card(email="someone.else@example.com")).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(done)
    assert done.customer == customer.id and done.payment_intent.customer == customer.id
    assert done.customer_details.email == "owner@example.com"


def test_manual_capture_completes_unpaid_until_captured(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client, payment_intent_data={"capture_method": "manual"})
    assert httpx.post(session.url, data=_card()).status_code == 303
    held = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert (held.status, held.payment_status) == ("complete", "unpaid")
    captured = stripe_client.v1.payment_intents.capture(held.payment_intent)
    assert_stripe_shape(captured)
    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert_stripe_shape(paid)
    assert paid.payment_status == "paid"
    assert "checkout.session.async_payment_succeeded" not in _events_for(stripe_client, session.id)


def test_expiring_cancels_the_abandoned_payment_intent(stripe_client: stripe.StripeClient) -> None:
    session = _session(stripe_client)
    assert httpx.post(session.url, data=_card("4000000000000002")).status_code == 402
    expired = stripe_client.v1.checkout.sessions.expire(session.id, params={"expand": ["payment_intent"]})
    assert_stripe_shape(expired)
    assert expired.status == "expired" and expired.payment_intent.status == "canceled"
    assert expired.payment_intent.cancellation_reason == "abandoned"
    assert httpx.post(session.url, data=_card()).status_code == 200  # the page now says it expired


def test_restart_keeps_sessions_and_their_expiry(tmp_path: Any) -> None:
    from tests.sandbox.control import private_sandbox

    data = str(tmp_path / "sandbox.sqlite")
    with private_sandbox(data_path=data) as (server, client):
        session = _session(client, line_items=[
            {"price_data": {"currency": "eur", "unit_amount": 1234, "product_data": {"name": "Kept"}},
             "quantity": 2}])
    with private_sandbox(data_path=data) as (server, client):
        items = client.v1.checkout.sessions.line_items.list(session.id)
        assert_stripe_shape(items)
        assert [(li.description, li.amount_total) for li in items.data] == [("Kept", 2468)]
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
        control(server, "POST", "/_sandbox/clock/advance", seconds=24 * 3600 + 1)
        expired = client.v1.checkout.sessions.retrieve(session.id)
        assert_stripe_shape(expired)
        assert expired.status == "expired"
