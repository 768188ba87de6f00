"""PaymentIntents through the SDK: the state machine, test-card outcomes, 3-D Secure and redirect methods
(the authorize page driven with plain HTTP), bank debits settling later, capture, cancel, events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.control import control
from tests.stripe_shapes import assert_stripe_shape
from tests.webhook_receiver import WebhookReceiver

RETURN_URL = "https://shop.example/return?order=7"
BILLING = {"name": "Jenny Rosen", "email": "jenny@example.com"}


@pytest.fixture(scope="module")
def receiver(stripe_client: stripe.StripeClient) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        endpoint = stripe_client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": [
            "payment_intent.*", "charge.succeeded", "charge.failed", "charge.pending", "charge.captured",
            "charge.refunded", "payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed",
            "payment_intent.requires_action", "payment_intent.processing", "payment_intent.canceled",
            "payment_intent.amount_capturable_updated"]})
        receiver.secret = endpoint.secret
        yield receiver
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)


def _event(receiver: WebhookReceiver, event_type: str, object_id: str) -> dict[str, Any]:
    event = receiver.wait_for(event_type, where=lambda e: e["data"]["object"]["id"] == object_id)
    assert_stripe_shape(event["data"]["object"])
    return event


def _create(client: stripe.StripeClient, **params: Any) -> stripe.PaymentIntent:
    """A PaymentIntent; one confirmed without a return_url names its method, as an integration that never
    redirects must (with automatic payment methods Stripe refuses it: see the test of that rule)."""
    if params.get("confirm") and "return_url" not in params and "automatic_payment_methods" not in params:
        params.setdefault("payment_method_types", [(params.get("payment_method_data") or {}).get("type", "card")])
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", **params})
    assert_stripe_shape(pi)
    return pi


def _retrieve(client: stripe.StripeClient, pi_id: str) -> stripe.PaymentIntent:
    pi = client.v1.payment_intents.retrieve(pi_id)
    assert_stripe_shape(pi)
    return pi


def _decline(client: stripe.StripeClient, **params: Any) -> stripe.CardError:
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "confirm": True,
                                                 "payment_method_types": ["card"], **params})
    assert err.value.http_status == 402
    body = err.value.json_body
    assert body is not None
    assert_stripe_shape(body["error"]["payment_intent"])
    return err.value


# One client for the whole module: building an httpx client per call costs a tenth of a second.
HTTP = httpx.Client()


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def _submit(sandbox: SandboxServer, url: str, action: str) -> httpx.Response:
    """Post the authorize page's form as a browser would (its hidden token and the chosen button)."""
    page = HTTP.get(url)
    assert page.status_code == 200
    form_action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert form_action is not None
    return HTTP.post(sandbox.url + form_action.group(1), data={"token": _token(url), "action": action})


# -- creating -------------------------------------------------------------------------------------------
def test_create_defaults_to_automatic_payment_methods(stripe_client: stripe.StripeClient) -> None:
    pi = _create(stripe_client, metadata={"order": "1"}, description="Credits")
    assert pi.id.startswith("pi_") and pi.status == "requires_payment_method"
    assert pi.client_secret and pi.client_secret.startswith(pi.id + "_secret_")
    assert pi.automatic_payment_methods is not None and pi.automatic_payment_methods.enabled
    assert "card" in pi.payment_method_types and pi.amount_received == 0 and pi.latest_charge is None
    euro = _create(stripe_client, currency="EUR", automatic_payment_methods={"enabled": True,
                                                                            "allow_redirects": "never"})
    assert euro.currency == "eur" and "sepa_debit" in euro.payment_method_types
    assert "ideal" not in euro.payment_method_types  # a redirect method
    explicit = _create(stripe_client, payment_method_types=["card"])
    assert explicit.payment_method_types == ["card"] and explicit.automatic_payment_methods is None
    fetched = stripe_client.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.client_secret})
    assert_stripe_shape(fetched)
    assert fetched.metadata.to_dict() == {"order": "1"}


@pytest.mark.parametrize(("params", "param"), [
    ({"amount": 0}, "amount"),
    ({"amount": 100_000_000}, "amount"),
    ({"currency": "dollars"}, "currency"),
    ({"customer": "cus_missing"}, "customer"),
    ({"payment_method": "pm_missing"}, "payment_method"),
    ({"payment_method_types": ["card", "bitcoin"]}, "payment_method_types[1]"),
    ({"off_session": True}, "off_session"),
    ({"return_url": RETURN_URL}, "return_url"),
    ({"colour": "red"}, "colour"),
    ({"payment_method_types": ["card"], "payment_method": "pm_card_visa", "confirm": True,
      "capture_method": "later"}, "capture_method"),
])
def test_create_refuses_bad_params(stripe_client: stripe.StripeClient, params: dict[str, Any], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        _create(stripe_client, **params)
    assert err.value.http_status in (400, 404) and err.value.param == param


def test_retrieve_errors(stripe_client: stripe.StripeClient) -> None:
    pi = _create(stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.retrieve(pi.id, params={"client_secret": "pi_x_secret_y"})
    assert err.value.param == "client_secret"
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.retrieve("pi_missing")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


# -- success ----------------------------------------------------------------------------------------------
def test_create_and_confirm_succeeds(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "payer@example.com"})
    pi = _create(stripe_client, customer=customer.id, payment_method="pm_card_visa", confirm=True,
                 receipt_email="payer@example.com", metadata={"order": "42"}, description="100 credits",
                 statement_descriptor_suffix="CREDITS")
    assert pi.status == "succeeded" and pi.amount_received == 2000 and pi.last_payment_error is None
    assert isinstance(pi.payment_method, str) and pi.payment_method.startswith("pm_")
    assert pi.payment_method != "pm_card_visa"  # a fresh PaymentMethod, as Stripe makes for test ids
    assert isinstance(pi.latest_charge, str)
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert_stripe_shape(charge)
    assert charge.status == "succeeded" and charge.paid and charge.captured and charge.amount_captured == 2000
    assert charge.payment_intent == pi.id and charge.customer == customer.id
    assert charge.balance_transaction and str(charge.balance_transaction).startswith("txn_")
    assert charge.payment_method_details is not None and charge.payment_method_details.card is not None
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.outcome is not None and charge.outcome.type == "authorized"
    assert charge.metadata.to_dict() == {"order": "42"} and charge.receipt_email == "payer@example.com"
    assert charge.receipt_url and "Receipt" in HTTP.get(charge.receipt_url).text

    expanded = stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge",
                                                                                  "payment_method"]})
    assert_stripe_shape(expanded)
    assert isinstance(expanded.latest_charge, stripe.Charge) and expanded.latest_charge.id == charge.id

    for event_type, object_id in (("payment_intent.created", pi.id), ("charge.succeeded", charge.id),
                                  ("payment_intent.succeeded", pi.id)):
        _event(receiver, event_type, object_id)
    assert _event(receiver, "payment_intent.succeeded", pi.id)["data"]["object"]["status"] == "succeeded"
    assert _event(receiver, "payment_intent.created", pi.id)["data"]["object"]["status"] == "requires_confirmation"


def test_two_step_confirm_and_update(stripe_client: stripe.StripeClient) -> None:
    pi = _create(stripe_client, payment_method_types=["card"])
    updated = stripe_client.v1.payment_intents.update(pi.id, params={
        "amount": 3000, "payment_method": "pm_card_mastercard", "metadata": {"a": "1"}})
    assert_stripe_shape(updated)
    assert updated.status == "requires_confirmation" and updated.amount == 3000
    confirmed = stripe_client.v1.payment_intents.confirm(pi.id)
    assert_stripe_shape(confirmed)
    assert confirmed.status == "succeeded" and confirmed.amount_received == 3000
    later = stripe_client.v1.payment_intents.update(pi.id, params={"metadata": {"b": "2"}})
    assert later.metadata.to_dict() == {"a": "1", "b": "2"}
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.update(pi.id, params={"amount": 10})
    assert err.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert err.value.code == "payment_intent_unexpected_state"


def test_confirm_without_payment_method(stripe_client: stripe.StripeClient) -> None:
    pi = _create(stripe_client, payment_method_types=["card"])
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.confirm(pi.id)
    assert err.value.http_status == 400 and err.value.code == "payment_intent_unexpected_state"
    confirmed = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method_data": {
        "type": "card", "card": {"token": "tok_visa"}}})  # type: ignore[typeddict-item]
    assert_stripe_shape(confirmed)
    assert confirmed.status == "succeeded"


def test_payment_method_type_must_be_allowed(stripe_client: stripe.StripeClient) -> None:
    grabpay = stripe_client.v1.payment_methods.create(params={"type": "grabpay"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        _create(stripe_client, payment_method_types=["card"], payment_method=grabpay.id)
    assert err.value.http_status == 400 and err.value.param == "payment_method"
    pi = _create(stripe_client, payment_method_types=["card"])
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": grabpay.id,
                                                                "return_url": RETURN_URL})
    assert err.value.param == "payment_method"
    assert _retrieve(stripe_client, pi.id).status == "requires_payment_method"


def test_payment_method_of_another_customer_is_refused(stripe_client: stripe.StripeClient) -> None:
    owner = stripe_client.v1.customers.create(params={"payment_method": "pm_card_visa"})
    pm = stripe_client.v1.customers.payment_methods.list(owner.id).data[0]
    with pytest.raises(stripe.InvalidRequestError) as err:
        _create(stripe_client, payment_method=pm.id, confirm=True)
    assert err.value.param == "payment_method"
    ok = _create(stripe_client, customer=owner.id, payment_method=pm.id, confirm=True, off_session=True)
    assert ok.status == "succeeded"


def test_setup_future_usage_saves_the_card(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    pi = _create(stripe_client, customer=customer.id, payment_method="pm_card_visa", confirm=True,
                 setup_future_usage="off_session")
    assert pi.setup_future_usage == "off_session"
    saved = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert [pm.id for pm in saved.data] == [pi.payment_method]


# -- declines -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("payment_method", "code", "decline_code", "message"), [
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."),
    ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
     "Your card has insufficient funds."),
    ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card", "Your card was declined."),
    ("pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card", "Your card was declined."),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "Your card has expired."),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error", None),
    ("pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_declined", "card_velocity_exceeded", None),
    ("pm_card_chargeCustomerFail", "card_declined", "generic_decline", "Your card was declined."),
    ("tok_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", None),
])
def test_decline_cards(stripe_client: stripe.StripeClient, receiver: WebhookReceiver, payment_method: str,
                       code: str, decline_code: str, message: str | None) -> None:
    err = _decline(stripe_client, payment_method=payment_method)
    assert err.code == code and err.error is not None and err.error.decline_code == decline_code
    if message:
        assert err.user_message == message
    body = err.json_body
    assert body is not None
    failed_pi = body["error"]["payment_intent"]
    assert failed_pi["status"] == "requires_payment_method" and body["error"]["charge"].startswith("ch_")

    pi = _retrieve(stripe_client, failed_pi["id"])
    assert pi.status == "requires_payment_method" and pi.payment_method is None
    error = pi.last_payment_error
    assert error is not None and error.type == "card_error" and error.code == code
    assert error.decline_code == decline_code and error.charge == body["error"]["charge"]
    assert error.payment_method is not None and error.payment_method.type == "card"
    charge = stripe_client.v1.charges.retrieve(body["error"]["charge"])
    assert_stripe_shape(charge)
    assert charge.status == "failed" and not charge.paid and charge.failure_code == code
    assert charge.outcome is not None and charge.outcome.reason == decline_code
    assert pi.latest_charge == charge.id
    _event(receiver, "charge.failed", charge.id)
    failed = _event(receiver, "payment_intent.payment_failed", pi.id)
    assert failed["data"]["object"]["last_payment_error"]["decline_code"] == decline_code


def test_retry_after_decline_succeeds(stripe_client: stripe.StripeClient) -> None:
    err = _decline(stripe_client, payment_method="pm_card_visa_chargeDeclinedInsufficientFunds")
    assert err.json_body is not None
    pi_id = err.json_body["error"]["payment_intent"]["id"]
    pi = stripe_client.v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    assert_stripe_shape(pi)
    assert pi.status == "succeeded" and pi.last_payment_error is None
    charges = stripe_client.v1.charges.list(params={"payment_intent": pi_id})
    assert_stripe_shape(charges)
    assert [c.status for c in charges.data] == ["succeeded", "failed"]


def test_declines_are_replayed_for_the_same_idempotency_key(stripe_client: stripe.StripeClient) -> None:
    params: Any = {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa_chargeDeclined",
                   "confirm": True, "payment_method_types": ["card"]}
    with pytest.raises(stripe.CardError) as first:
        stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "decline-once"})
    with pytest.raises(stripe.CardError) as again:
        stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "decline-once"})
    assert first.value.json_body == again.value.json_body


# -- 3-D Secure -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("payment_method", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required",
                                            "pm_card_authenticationRequiredOnSetup"])
def test_three_d_secure_complete(stripe_client: stripe.StripeClient, sandbox: SandboxServer,
                                 receiver: WebhookReceiver, payment_method: str) -> None:
    pi = _create(stripe_client, payment_method=payment_method, confirm=True, return_url=RETURN_URL)
    assert pi.status == "requires_action" and pi.next_action is not None
    assert pi.next_action.type == "redirect_to_url" and pi.next_action.redirect_to_url is not None
    url = pi.next_action.redirect_to_url.url
    assert url and url.startswith(f"{sandbox.url}/authorize/{pi.id}?")
    assert pi.next_action.redirect_to_url.return_url == RETURN_URL
    _event(receiver, "payment_intent.requires_action", pi.id)
    page = HTTP.get(url)
    assert "Complete authentication" in page.text and "Fail authentication" in page.text and "20.00 USD" in page.text

    answer = _submit(sandbox, url, "complete")
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://shop.example/return"
    assert query == {"order": ["7"], "payment_intent": [pi.id], "payment_intent_client_secret": [pi.client_secret],
                     "redirect_status": ["succeeded"]}
    done = _retrieve(stripe_client, pi.id)
    assert done.status == "succeeded" and done.next_action is None
    charge = stripe_client.v1.charges.retrieve(str(done.latest_charge))
    assert_stripe_shape(charge)
    details = charge.payment_method_details
    assert details is not None and details.card is not None and details.card.three_d_secure is not None
    assert details.card.three_d_secure.result == "authenticated"
    _event(receiver, "payment_intent.succeeded", pi.id)
    # The page served its purpose: it cannot finish the payment twice.
    assert HTTP.post(f"{sandbox.url}/authorize/{pi.id}", data={"token": _token(url), "action": "fail"}
                      ).status_code == 409


def test_three_d_secure_fail(stripe_client: stripe.StripeClient, sandbox: SandboxServer,
                             receiver: WebhookReceiver) -> None:
    pi = _create(stripe_client, payment_method="pm_card_authenticationRequired", confirm=True, return_url=RETURN_URL)
    assert pi.next_action is not None and pi.next_action.redirect_to_url is not None
    answer = _submit(sandbox, str(pi.next_action.redirect_to_url.url), "fail")
    assert answer.status_code == 303 and "redirect_status=failed" in answer.headers["location"]
    failed = _retrieve(stripe_client, pi.id)
    assert failed.status == "requires_payment_method" and failed.last_payment_error is not None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    event = _event(receiver, "payment_intent.payment_failed", pi.id)
    assert event["data"]["object"]["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_three_d_secure_then_decline(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    pi = _create(stripe_client, payment_method="pm_card_authenticationRequiredChargeDeclinedInsufficientFunds",
                 confirm=True, return_url=RETURN_URL)
    assert pi.next_action is not None and pi.next_action.redirect_to_url is not None
    answer = _submit(sandbox, str(pi.next_action.redirect_to_url.url), "complete")
    assert "redirect_status=failed" in answer.headers["location"]
    failed = _retrieve(stripe_client, pi.id)
    assert failed.last_payment_error is not None and failed.last_payment_error.decline_code == "insufficient_funds"


def test_three_d_secure_without_return_url_uses_stripe_sdk(stripe_client: stripe.StripeClient,
                                                           sandbox: SandboxServer) -> None:
    pi = _create(stripe_client, payment_method="pm_card_authenticationRequired", confirm=True)
    assert pi.status == "requires_action" and pi.next_action is not None
    assert pi.next_action.type == "use_stripe_sdk" and pi.next_action.use_stripe_sdk is not None
    url = pi.next_action.use_stripe_sdk["stripe_js"]
    answer = _submit(sandbox, url, "complete")
    assert answer.status_code == 200 and "Authentication complete" in answer.text
    assert _retrieve(stripe_client, pi.id).status == "succeeded"


def test_off_session_authentication_required(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"payment_method": "pm_card_authenticationRequired"})
    pm = stripe_client.v1.customers.payment_methods.list(customer.id).data[0]
    err = _decline(stripe_client, customer=customer.id, payment_method=pm.id, off_session=True)
    assert err.code == "authentication_required" and err.error is not None
    assert err.error.decline_code == "authentication_required"
    # A card set up for off-session use is charged without authentication.
    setup = stripe_client.v1.customers.create(params={"payment_method": "pm_card_authenticationRequiredOnSetup"})
    saved = stripe_client.v1.customers.payment_methods.list(setup.id).data[0]
    ok = _create(stripe_client, customer=setup.id, payment_method=saved.id, confirm=True, off_session="recurring")
    assert ok.status == "succeeded"


# -- redirect methods -------------------------------------------------------------------------------------
def test_grabpay_redirect(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    params: dict[str, Any] = {"currency": "sgd", "payment_method_types": ["grabpay"],
                              "payment_method_data": {"type": "grabpay"}, "confirm": True}
    with pytest.raises(stripe.InvalidRequestError) as err:
        _create(stripe_client, **params)
    assert err.value.param == "return_url"
    pi = _create(stripe_client, **params, return_url=RETURN_URL)
    assert pi.status == "requires_action" and pi.next_action is not None and pi.next_action.redirect_to_url
    url = str(pi.next_action.redirect_to_url.url)
    page = HTTP.get(url).text
    assert "GrabPay" in page and "Authorize test payment" in page and "Fail test payment" in page
    answer = _submit(sandbox, url, "complete")
    assert "redirect_status=succeeded" in answer.headers["location"]
    done = _retrieve(stripe_client, pi.id)
    assert done.status == "succeeded"
    charge = stripe_client.v1.charges.retrieve(str(done.latest_charge))
    assert_stripe_shape(charge)
    assert charge.payment_method_details is not None and charge.payment_method_details.type == "grabpay"


@pytest.mark.parametrize(("type_", "currency", "extra", "action", "url_field"), [
    ("alipay", "usd", {}, "alipay_handle_redirect", "url"), ("ideal", "eur", {}, "redirect_to_url", "url"),
    ("bancontact", "eur", {"billing_details": BILLING}, "redirect_to_url", "url"),
    ("p24", "eur", {"billing_details": BILLING}, "redirect_to_url", "url"),
    ("fpx", "myr", {}, "redirect_to_url", "url"), ("klarna", "eur", {}, "redirect_to_url", "url"),
])
def test_redirect_methods_fail_on_the_page(stripe_client: stripe.StripeClient, sandbox: SandboxServer, type_: str,
                                           currency: str, extra: dict[str, Any], action: str,
                                           url_field: str) -> None:
    pi = _create(stripe_client, currency=currency, payment_method_data={"type": type_, **extra}, confirm=True,
                 return_url=RETURN_URL)
    assert pi.status == "requires_action" and pi.next_action is not None and pi.next_action.type == action
    details = pi.next_action[action]
    assert details["return_url"] == RETURN_URL
    answer = _submit(sandbox, str(details[url_field]), "fail")
    assert "redirect_status=failed" in answer.headers["location"]
    failed = _retrieve(stripe_client, pi.id)
    assert failed.status == "requires_payment_method" and failed.last_payment_error is not None


def test_paynow_shows_a_qr_code_to_scan_and_needs_no_return_url(stripe_client: stripe.StripeClient,
                                                              sandbox: SandboxServer) -> None:
    pi = _create(stripe_client, currency="sgd", payment_method_data={"type": "paynow"}, confirm=True)
    assert pi.status == "requires_action" and pi.next_action is not None
    assert pi.next_action.type == "paynow_display_qr_code"
    qr = pi.next_action.paynow_display_qr_code
    assert qr is not None and qr.hosted_instructions_url == qr.data
    svg, png = HTTP.get(str(qr.image_url_svg)), HTTP.get(str(qr.image_url_png))
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    page = HTTP.get(str(qr.hosted_instructions_url)).text
    assert f'<img src="{qr.image_url_svg}"' in page and 'alt="PayNow QR code for this payment"' in page
    answer = _submit(sandbox, str(qr.hosted_instructions_url), "complete")
    assert answer.status_code == 200 and "Authentication complete" in answer.text
    assert _retrieve(stripe_client, pi.id).status == "succeeded"
    assert HTTP.get(str(qr.image_url_svg)).status_code == 404  # no code once it is paid


def test_automatic_methods_that_may_redirect_need_a_return_url_at_confirmation(
        stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params={
            "amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True})
    assert refused.value.http_status == 400 and refused.value.param is None and refused.value.code is None
    assert "you must provide a `return_url`" in str(refused.value.user_message)
    pi = _create(stripe_client, payment_method="pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.payment_intents.confirm(pi.id)
    assert again.value.json_body["error"]["payment_intent"]["id"] == pi.id
    assert _retrieve(stripe_client, pi.id).status == "requires_confirmation"  # nothing charged
    never = _create(stripe_client, payment_method="pm_card_visa", confirm=True,
                    automatic_payment_methods={"enabled": True, "allow_redirects": "never"})
    assert never.status == "succeeded"
    assert _create(stripe_client, payment_method="pm_card_visa", confirm=True,
                   return_url=RETURN_URL).status == "succeeded"


@pytest.mark.parametrize(("currency", "amount", "message"), [
    ("usd", 49, "Amount must be at least $0.50 usd"), ("eur", 10, "Amount must be at least €0.50 eur"),
    ("gbp", 29, "Amount must be at least £0.30 gbp"), ("jpy", 49, "Amount must be at least ¥50 jpy"),
])
def test_amounts_below_the_currency_minimum_are_refused(stripe_client: stripe.StripeClient, currency: str,
                                                        amount: int, message: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _create(stripe_client, amount=amount, currency=currency)
    assert (refused.value.code, refused.value.param, refused.value.user_message) == (
        "amount_too_small", "amount", message)
    pi = _create(stripe_client, currency=currency)
    with pytest.raises(stripe.InvalidRequestError) as update:
        stripe_client.v1.payment_intents.update(pi.id, params={"amount": amount})
    assert update.value.code == "amount_too_small"


# -- bank debits ------------------------------------------------------------------------------------------
def _bank_pi(client: stripe.StripeClient, currency: str, data: dict[str, Any]) -> stripe.PaymentIntent:
    return _create(client, currency=currency, payment_method_data={**data, "billing_details": BILLING},
                   confirm=True)


def _settle(sandbox: SandboxServer, seconds: float = 1) -> None:
    control(sandbox, "POST", "/_sandbox/clock/advance", seconds=seconds)


def test_sepa_processing_then_succeeded(stripe_client: stripe.StripeClient, sandbox: SandboxServer,
                                        receiver: WebhookReceiver) -> None:
    pi = _bank_pi(stripe_client, "eur", {"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}})
    assert pi.status == "processing"
    charge = stripe_client.v1.charges.retrieve(str(pi.latest_charge))
    assert_stripe_shape(charge)
    assert charge.status == "pending" and not charge.paid
    _event(receiver, "payment_intent.processing", pi.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.cancel(pi.id)
    _settle(sandbox)
    done = _retrieve(stripe_client, pi.id)
    assert done.status == "succeeded" and done.amount_received == 2000
    charge = stripe_client.v1.charges.retrieve(str(pi.latest_charge))
    assert charge.status == "succeeded" and charge.paid and charge.captured
    _event(receiver, "payment_intent.succeeded", pi.id)
    _event(receiver, "charge.succeeded", charge.id)


@pytest.mark.parametrize(("currency", "data", "failure_code"), [
    ("eur", {"type": "sepa_debit", "sepa_debit": {"iban": "DE62370400440532013001"}}, "generic_could_not_process"),
    ("eur", {"type": "sepa_debit", "sepa_debit": {"iban": "AT861904300235473202"}}, "generic_could_not_process"),
    ("usd", {"type": "us_bank_account", "us_bank_account": {"account_number": "000222222227",
                                                            "routing_number": "110000000"}}, "insufficient_funds"),
    ("gbp", {"type": "bacs_debit", "bacs_debit": {"account_number": "22222227", "sort_code": "108800"}},
     "insufficient_funds"),
    ("gbp", {"type": "bacs_debit", "bacs_debit": {"account_number": "55555555", "sort_code": "108800"}},
     "generic_could_not_process"),
])
def test_failing_bank_accounts(stripe_client: stripe.StripeClient, sandbox: SandboxServer,
                               receiver: WebhookReceiver, currency: str, data: dict[str, Any],
                               failure_code: str) -> None:
    pi = _bank_pi(stripe_client, currency, data)
    assert pi.status == "processing"
    _settle(sandbox)
    failed = _retrieve(stripe_client, pi.id)
    assert failed.status == "requires_payment_method" and failed.last_payment_error is not None
    # the PaymentIntent's error code is one of the API's; the bank's own code stays on the charge
    assert failed.last_payment_error.code == (
        failure_code if failure_code == "insufficient_funds" else "payment_intent_payment_attempt_failed")
    charge = stripe_client.v1.charges.retrieve(str(pi.latest_charge))
    assert charge.status == "failed" and charge.failure_code == failure_code
    _event(receiver, "payment_intent.payment_failed", pi.id)


def test_delayed_bank_accounts_settle_after_three_minutes(stripe_client: stripe.StripeClient,
                                                           sandbox: SandboxServer) -> None:
    pi = _bank_pi(stripe_client, "eur", {"type": "sepa_debit", "sepa_debit": {"iban": "DE08370400440532013003"}})
    _settle(sandbox, 60)
    assert _retrieve(stripe_client, pi.id).status == "processing"
    _settle(sandbox, 180)
    assert _retrieve(stripe_client, pi.id).status == "succeeded"


# -- capture and cancel ------------------------------------------------------------------------------------
def test_manual_capture(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pi = _create(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")
    assert pi.status == "requires_capture" and pi.amount_capturable == 2000 and pi.amount_received == 0
    charge = stripe_client.v1.charges.retrieve(str(pi.latest_charge))
    assert not charge.captured and charge.paid and charge.balance_transaction is None
    _event(receiver, "payment_intent.amount_capturable_updated", pi.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2001})
    assert err.value.param == "amount_to_capture"
    captured = stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 1500})
    assert_stripe_shape(captured)
    assert captured.status == "succeeded" and captured.amount_received == 1500 and captured.amount_capturable == 0
    charge = stripe_client.v1.charges.retrieve(str(pi.latest_charge))
    assert_stripe_shape(charge)
    assert charge.captured and charge.amount_captured == 1500 and charge.amount_refunded == 500
    event = _event(receiver, "charge.captured", charge.id)
    assert event["data"]["previous_attributes"]["captured"] is False
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.payment_intents.capture(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"


def test_cancel(stripe_client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pi = _create(stripe_client)
    canceled = stripe_client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "requested_by_customer"})
    assert_stripe_shape(canceled)
    assert canceled.status == "canceled" and canceled.cancellation_reason == "requested_by_customer"
    assert canceled.canceled_at is not None
    _event(receiver, "payment_intent.canceled", pi.id)
    for call in (lambda: stripe_client.v1.payment_intents.cancel(pi.id),
                 lambda: stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})):
        with pytest.raises(stripe.InvalidRequestError) as err:
            call()
        assert err.value.code == "payment_intent_unexpected_state"

    paid = _create(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.cancel(paid.id)

    held = _create(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")
    released = stripe_client.v1.payment_intents.cancel(held.id)
    assert released.status == "canceled" and released.amount_capturable == 0
    charge = stripe_client.v1.charges.retrieve(str(held.latest_charge))
    assert charge.refunded and charge.amount_refunded == 2000

    waiting = _create(stripe_client, payment_method="pm_card_authenticationRequired", confirm=True,
                      return_url=RETURN_URL)
    assert stripe_client.v1.payment_intents.cancel(waiting.id).next_action is None


# -- lists ------------------------------------------------------------------------------------------------
def test_list_by_customer(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    made = [_create(stripe_client, customer=customer.id).id for _ in range(3)]
    page = stripe_client.v1.payment_intents.list(params={"customer": customer.id, "limit": 2})
    assert_stripe_shape(page)
    assert [pi.id for pi in page.data] == made[::-1][:2] and page.has_more
    assert [pi.id for pi in page.auto_paging_iter()] == made[::-1]
    everything = stripe_client.v1.payment_intents.list(params={"limit": 3})
    assert_stripe_shape(everything)
    assert len(everything.data) == 3


def test_refused_requests_change_nothing(stripe_client: stripe.StripeClient) -> None:
    pi = _create(stripe_client, payment_method_types=["card"], metadata={"v": "1"})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.update(pi.id, params={"amount": 999, "metadata": {"v": "2"},
                                                               "payment_method": "pm_missing"})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.confirm(pi.id, params={"receipt_email": "x@example.com",
                                                                "payment_method_data": {"type": "grabpay"},
                                                                "return_url": RETURN_URL})
    same = _retrieve(stripe_client, pi.id)
    assert same.amount == 2000 and same.metadata.to_dict() == {"v": "1"} and same.receipt_email is None
    assert same.status == "requires_payment_method"


def test_processing_payments_settle_after_a_restart(tmp_path: Any) -> None:
    from tests.sandbox.control import private_sandbox

    data = str(tmp_path / "sandbox.db")
    with private_sandbox(data_path=data, async_settle_seconds=60) as (server, client):
        pi = _bank_pi(client, "eur", {"type": "sepa_debit", "sepa_debit": {"iban": "AT611904300234573201"}})
        assert pi.status == "processing"
    with private_sandbox(data_path=data, async_settle_seconds=60) as (server, client):
        assert _retrieve(client, pi.id).status == "processing"
        _settle(server, 61)
        assert _retrieve(client, pi.id).status == "succeeded"
