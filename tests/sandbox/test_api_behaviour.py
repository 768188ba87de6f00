"""Behaviour common to every resource: idempotency, errors, list envelopes, ``Stripe-Version``."""

from __future__ import annotations

import uuid

import httpx
import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.stripe_shapes import assert_stripe_shape, checked_client


def _key() -> str:
    return f"idem-{uuid.uuid4()}"


def test_idempotent_replay_returns_the_first_response(stripe_client: stripe.StripeClient) -> None:
    key = _key()
    first = stripe_client.v1.products.create(params={"name": "Once"}, options={"idempotency_key": key})
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    again = stripe_client.v1.products.create(params={"name": "Once"}, options={"idempotency_key": key})
    assert_stripe_shape(again)
    assert again.id == first.id and again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Idempotency-Key"] == key
    # no second object was made
    assert [p.id for p in stripe_client.v1.products.list(params={"ids": [first.id]}).data] == [first.id]


def test_idempotency_key_with_other_params_or_path(stripe_client: stripe.StripeClient) -> None:
    key = _key()
    stripe_client.v1.products.create(params={"name": "A"}, options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError) as other_params:
        stripe_client.v1.products.create(params={"name": "B"}, options={"idempotency_key": key})
    assert other_params.value.http_status == 400 and other_params.value.error.type == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create(params={"name": "A"}, options={"idempotency_key": key})


def test_idempotency_key_length(stripe_client: stripe.StripeClient) -> None:
    ok = stripe_client.v1.customers.create(options={"idempotency_key": "k" * 255})
    assert ok.id
    with pytest.raises(stripe.InvalidRequestError) as too_long:
        stripe_client.v1.customers.create(options={"idempotency_key": "k" * 256})
    assert too_long.value.http_status == 400


def test_failed_validation_is_not_saved_under_the_key(stripe_client: stripe.StripeClient) -> None:
    key = _key()
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": "prod_missing"},
                                       options={"idempotency_key": key})
    product = stripe_client.v1.products.create(params={"name": "later"})
    # the refused request saved nothing, so the key is free for a request with other parameters
    price = stripe_client.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": product.id},
                                           options={"idempotency_key": key})
    assert price.product == product.id


def test_idempotency_key_is_ignored_on_get(sandbox: SandboxServer) -> None:
    headers = {"Authorization": "Bearer sk_test_x", "Idempotency-Key": _key()}
    first = httpx.get(f"{sandbox.url}/v1/customers?limit=1", headers=headers)
    second = httpx.get(f"{sandbox.url}/v1/customers?limit=1", headers=headers)
    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers


def test_error_shapes_and_statuses(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.products.create(params={"description": "no name"})  # type: ignore[typeddict-item]
    err = missing.value
    assert err.http_status == 400 and err.code == "parameter_missing" and err.param == "name"
    assert err.error.type == "invalid_request_error" and "name" in err.error.message
    assert err.json_body["error"]["doc_url"].startswith("https://stripe.com/docs/error-codes/")
    assert err.request_id and err.request_id.startswith("req_")

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.products.create(params={"name": "x", "metadata": {"a": "b"}, "colour": "red"})  # type: ignore
    assert unknown.value.param == "colour" and unknown.value.code == "parameter_unknown"

    with pytest.raises(stripe.InvalidRequestError) as not_found:
        stripe_client.v1.products.update("prod_nothing", params={"name": "x"})
    assert not_found.value.http_status == 404 and not_found.value.code == "resource_missing"
    assert "prod_nothing" in not_found.value.user_message

    anonymous = httpx.get(f"{sandbox.url}/v1/customers")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    basic = httpx.get(f"{sandbox.url}/v1/customers", auth=("sk_test_basic", ""))
    assert basic.status_code == 200  # curl -u sk_test_...: works as on Stripe

    unrouted = httpx.get(f"{sandbox.url}/v1/nothing_here", headers={"Authorization": "Bearer sk_test_x"})
    assert unrouted.status_code == 404 and "Unrecognized request URL" in unrouted.json()["error"]["message"]
    json_body = httpx.post(f"{sandbox.url}/v1/customers", json={"name": "x"},
                           headers={"Authorization": "Bearer sk_test_x"})
    assert json_body.status_code == 400


def test_list_envelope_limits_and_cursors(stripe_client: stripe.StripeClient) -> None:
    tag = uuid.uuid4().hex[:8]
    made = [stripe_client.v1.customers.create(params={"email": f"{tag}@example.com"}).id for _ in range(12)]
    page = stripe_client.v1.customers.list(params={"email": f"{tag}@example.com"})
    assert_stripe_shape(page)
    raw = page.last_response.data
    assert raw["object"] == "list" and raw["url"] == "/v1/customers"
    assert len(page.data) == 10 and page.has_more  # default limit 10, newest first
    assert [c.id for c in page.data] == made[::-1][:10]
    assert len(stripe_client.v1.customers.list(params={"email": f"{tag}@example.com", "limit": 100}).data) == 12
    one = stripe_client.v1.customers.list(params={"email": f"{tag}@example.com", "limit": 1})
    assert [c.id for c in one.data] == [made[-1]] and one.has_more
    last = stripe_client.v1.customers.list(params={"email": f"{tag}@example.com", "starting_after": made[1]})
    assert [c.id for c in last.data] == [made[0]] and not last.has_more
    newest = stripe_client.v1.customers.list(params={"email": f"{tag}@example.com", "ending_before": made[9],
                                                     "limit": 2})
    assert [c.id for c in newest.data] == [made[11], made[10]] and not newest.has_more
    middle = stripe_client.v1.customers.list(params={"email": f"{tag}@example.com", "ending_before": made[5],
                                                     "limit": 2})
    assert [c.id for c in middle.data] == [made[7], made[6]] and middle.has_more

    for bad in (0, 101, "ten"):
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.customers.list(params={"limit": bad})  # type: ignore[typeddict-item]
        assert err.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as both:
        stripe_client.v1.customers.list(params={"starting_after": made[0], "ending_before": made[1]})
    assert both.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as cursor:
        stripe_client.v1.customers.list(params={"starting_after": "cus_missing"})
    assert cursor.value.http_status == 404 and cursor.value.param == "starting_after"


def test_stripe_version_header_is_accepted(sandbox: SandboxServer) -> None:
    client = checked_client(sandbox.url, "sk_test_x", stripe_version="2024-06-20")
    customer = client.v1.customers.create()
    assert customer.last_response.headers["Stripe-Version"] == "2024-06-20"
    plain = httpx.get(f"{sandbox.url}/v1/customers", headers={"Authorization": "Bearer sk_test_x"})
    assert plain.headers["Stripe-Version"] == "2026-10-28.endive"
