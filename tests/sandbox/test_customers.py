import pytest
import stripe

from tests.stripe_shapes import assert_stripe_shape, checked_client


def test_create_retrieve_update_delete(stripe_client: stripe.StripeClient) -> None:
    customers = stripe_client.v1.customers
    created = customers.create(params={"email": "ada@example.com", "name": "Ada", "metadata": {"user_id": "u1"}})
    assert_stripe_shape(created)
    assert created.id.startswith("cus_") and created.email == "ada@example.com"
    assert created.metadata["user_id"] == "u1" and created.livemode is False

    fetched = customers.retrieve(created.id)
    assert_stripe_shape(fetched)
    assert fetched.name == "Ada"

    updated = customers.update(created.id, params={"name": "Ada L.", "metadata": {"user_id": "", "plan": "x"}})
    assert_stripe_shape(updated)
    assert updated.name == "Ada L." and updated.metadata.to_dict() == {"plan": "x"}

    deleted = customers.delete(created.id)
    assert_stripe_shape(deleted)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        customers.update(created.id, params={"name": "gone"})
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_list_filters_by_email_and_paginates(stripe_client: stripe.StripeClient) -> None:
    customers = stripe_client.v1.customers
    email = "pager@example.com"
    made = [customers.create(params={"email": email}).id for _ in range(5)]
    page = customers.list(params={"email": email, "limit": 2})
    assert_stripe_shape(page)
    assert [c.id for c in page.data] == made[::-1][:2] and page.has_more
    rest = customers.list(params={"email": email, "limit": 10, "starting_after": page.data[-1].id})
    assert [c.id for c in rest.data] == made[::-1][2:] and not rest.has_more
    before = customers.list(params={"email": email, "ending_before": made[2]})
    assert [c.id for c in before.data] == [made[4], made[3]]
    assert [c.id for c in page.auto_paging_iter()] == made[::-1]


def test_errors_have_stripes_shape(stripe_client: stripe.StripeClient, sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.customers.retrieve("cus_missing")
    assert missing.value.http_status == 404
    assert missing.value.error.type == "invalid_request_error" and missing.value.param == "id"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.customers.create(params={"colour": "red"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.http_status == 400 and unknown.value.param == "colour"
    with pytest.raises(stripe.InvalidRequestError) as bad_limit:
        stripe_client.v1.customers.list(params={"limit": 101})
    assert bad_limit.value.param == "limit"
    for key in ("pk_test_abc", "sk_live_abc", "rk_test_abc"):
        client = checked_client(sandbox.url, key)
        with pytest.raises(stripe.AuthenticationError) as auth:
            client.v1.customers.list()
        assert auth.value.http_status == 401


def test_idempotency_key_replays_and_refuses_other_params(stripe_client: stripe.StripeClient) -> None:
    customers = stripe_client.v1.customers
    first = customers.create(params={"email": "idem@example.com"}, options={"idempotency_key": "key-1"})
    again = customers.create(params={"email": "idem@example.com"}, options={"idempotency_key": "key-1"})
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError) as err:
        customers.create(params={"email": "other@example.com"}, options={"idempotency_key": "key-1"})
    assert err.value.http_status == 400
