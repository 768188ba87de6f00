"""Products and prices through the official SDK: CRUD, lookup keys, recurring prices, expansion, errors."""

from __future__ import annotations

import uuid

import pytest
import stripe

from tests.stripe_shapes import assert_stripe_shape


def _key(name: str) -> str:
    # The session's sandbox is shared by every test: unique lookup keys keep tests independent.
    return f"{name}_{uuid.uuid4().hex[:10]}"


def test_product_create_retrieve_update_list(stripe_client: stripe.StripeClient) -> None:
    products = stripe_client.v1.products
    made = products.create(params={"name": "Credits 100", "description": "100 credits",
                                   "metadata": {"credits": "100"}})
    assert_stripe_shape(made)
    assert made.id.startswith("prod_") and made.active is True and made.metadata["credits"] == "100"
    assert products.retrieve(made.id).name == "Credits 100"

    updated = products.update(made.id, params={"active": False, "name": "Credits (old)"})
    assert_stripe_shape(updated)
    assert updated.active is False and updated.name == "Credits (old)"

    inactive = products.list(params={"active": False, "limit": 100})
    assert_stripe_shape(inactive)
    assert made.id in [p.id for p in inactive.data]
    assert all(p.active is False for p in inactive.data)
    assert made.id not in [p.id for p in products.list(params={"active": True, "limit": 100}).data]
    by_id = products.list(params={"ids": [made.id]})
    assert [p.id for p in by_id.data] == [made.id]


def test_product_with_own_id_and_default_price(stripe_client: stripe.StripeClient) -> None:
    product_id = "prod_" + uuid.uuid4().hex[:12]
    made = stripe_client.v1.products.create(params={
        "id": product_id, "name": "Pro", "default_price_data": {"currency": "eur", "unit_amount": 900}})
    assert_stripe_shape(made)
    assert made.id == product_id and made.default_price.startswith("price_")
    price = stripe_client.v1.prices.retrieve(made.default_price)
    assert price.product == product_id and price.unit_amount == 900 and price.currency == "eur"
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.products.create(params={"id": product_id, "name": "Pro again"})
    assert again.value.http_status == 400 and again.value.code == "resource_already_exists"


def test_product_errors(stripe_client: stripe.StripeClient) -> None:
    products = stripe_client.v1.products
    with pytest.raises(stripe.InvalidRequestError) as missing:
        products.create(params={})  # type: ignore[typeddict-item]
    assert missing.value.http_status == 400 and missing.value.param == "name"
    with pytest.raises(stripe.InvalidRequestError) as gone:
        products.retrieve("prod_nope")
    assert gone.value.http_status == 404 and gone.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as bad_bool:
        products.create(params={"name": "x", "active": "maybe"})  # type: ignore[typeddict-item]
    assert bad_bool.value.param == "active"


def test_product_delete_only_without_prices(stripe_client: stripe.StripeClient) -> None:
    bare = stripe_client.v1.products.create(params={"name": "Bare"})
    deleted = stripe_client.v1.products.delete(bare.id)
    assert_stripe_shape(deleted)
    assert deleted.deleted is True
    priced = stripe_client.v1.products.create(params={"name": "Priced"})
    stripe_client.v1.prices.create(params={"product": priced.id, "currency": "usd", "unit_amount": 100})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.products.delete(priced.id)


def test_one_time_and_recurring_prices(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Plan"})
    once = stripe_client.v1.prices.create(params={"product": product.id, "currency": "USD", "unit_amount": 1500})
    assert_stripe_shape(once)
    assert once.id.startswith("price_") and once.type == "one_time" and once.recurring is None
    assert once.currency == "usd" and str(once.unit_amount_decimal) == "1500" and once.active is True

    monthly = stripe_client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 990,
        "recurring": {"interval": "month"}, "nickname": "monthly", "metadata": {"tier": "pro"}})
    assert_stripe_shape(monthly)
    assert monthly.type == "recurring" and monthly.recurring.interval == "month"
    assert monthly.recurring.interval_count == 1 and monthly.recurring.usage_type == "licensed"
    yearly = stripe_client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 9900,
        "recurring": {"interval": "year", "interval_count": 1}})
    listed = stripe_client.v1.prices.list(params={"product": product.id, "type": "recurring"})
    assert_stripe_shape(listed)
    assert [p.id for p in listed.data] == [yearly.id, monthly.id]
    one_time = stripe_client.v1.prices.list(params={"product": product.id, "type": "one_time"})
    assert [p.id for p in one_time.data] == [once.id]


def test_price_update_and_active_filter(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Updatable"})
    price = stripe_client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 500})
    updated = stripe_client.v1.prices.update(price.id, params={
        "active": False, "nickname": "retired", "metadata": {"why": "old"}})
    assert_stripe_shape(updated)
    assert updated.active is False and updated.nickname == "retired" and updated.metadata["why"] == "old"
    assert updated.unit_amount == 500  # amounts are immutable
    active = stripe_client.v1.prices.list(params={"product": product.id, "active": True})
    inactive = stripe_client.v1.prices.list(params={"product": product.id, "active": False})
    assert active.data == [] and [p.id for p in inactive.data] == [price.id]
    with pytest.raises(stripe.InvalidRequestError) as immutable:
        stripe_client.v1.prices.update(price.id, params={"unit_amount": 1})  # type: ignore[typeddict-unknown-key]
    assert immutable.value.param == "unit_amount"


def test_lookup_keys_are_unique_and_transferable(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Lookup"})
    key = _key("pro_monthly")
    first = stripe_client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 1000, "lookup_key": key})
    assert first.lookup_key == key
    with pytest.raises(stripe.InvalidRequestError) as taken:
        stripe_client.v1.prices.create(params={
            "product": product.id, "currency": "usd", "unit_amount": 1200, "lookup_key": key})
    assert taken.value.http_status == 400 and taken.value.param == "lookup_key"

    second = stripe_client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 1200, "lookup_key": key,
        "transfer_lookup_key": True})
    assert second.lookup_key == key
    assert stripe_client.v1.prices.retrieve(first.id).lookup_key is None
    found = stripe_client.v1.prices.list(params={"lookup_keys": [key]})
    assert_stripe_shape(found)
    assert [p.id for p in found.data] == [second.id]

    # and back again, by update
    back = stripe_client.v1.prices.update(first.id, params={"lookup_key": key, "transfer_lookup_key": True})
    assert back.lookup_key == key
    assert stripe_client.v1.prices.retrieve(second.id).lookup_key is None
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.update(second.id, params={"lookup_key": key})


def test_lookup_keys_filter_with_several_keys(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Several"})
    keys = [_key("k") for _ in range(3)]
    made = [stripe_client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 100 * (i + 1), "lookup_key": k}).id
        for i, k in enumerate(keys)]
    found = stripe_client.v1.prices.list(params={"lookup_keys": [keys[0], keys[2], "no_such_key"]})
    assert [p.id for p in found.data] == [made[2], made[0]]
    nothing = stripe_client.v1.prices.list(params={"lookup_keys": ["no_such_key"]})
    assert nothing.data == [] and nothing.has_more is False


def test_price_with_product_data_and_expand(stripe_client: stripe.StripeClient) -> None:
    price = stripe_client.v1.prices.create(params={
        "currency": "usd", "unit_amount": 2500, "product_data": {"name": "Inline product"},
        "expand": ["product"]})
    assert_stripe_shape(price)
    assert price.product.object == "product" and price.product.name == "Inline product"
    assert_stripe_shape(price.product.to_dict())

    fetched = stripe_client.v1.prices.retrieve(price.id, params={"expand": ["product"]})
    assert fetched.product.id == price.product.id
    plain = stripe_client.v1.prices.retrieve(price.id)
    assert plain.product == price.product.id  # ids unless expanded

    listed = stripe_client.v1.prices.list(params={"product": price.product.id, "expand": ["data.product"]})
    assert_stripe_shape(listed)
    assert [p.product.name for p in listed.data] == ["Inline product"]


def test_price_errors(stripe_client: stripe.StripeClient) -> None:
    prices = stripe_client.v1.prices
    product = stripe_client.v1.products.create(params={"name": "Errors"})
    with pytest.raises(stripe.InvalidRequestError) as no_currency:
        prices.create(params={"product": product.id, "unit_amount": 100})  # type: ignore[typeddict-item]
    assert no_currency.value.param == "currency" and no_currency.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as no_product:
        prices.create(params={"currency": "usd", "unit_amount": 100})
    assert no_product.value.param == "product"
    with pytest.raises(stripe.InvalidRequestError) as unknown_product:
        prices.create(params={"currency": "usd", "unit_amount": 100, "product": "prod_missing"})
    assert unknown_product.value.http_status == 404 and unknown_product.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as bad_interval:
        prices.create(params={"currency": "usd", "unit_amount": 100, "product": product.id,
                              "recurring": {"interval": "fortnight"}})  # type: ignore[typeddict-item]
    assert bad_interval.value.param == "recurring[interval]"
    with pytest.raises(stripe.InvalidRequestError) as negative:
        prices.create(params={"currency": "usd", "unit_amount": -1, "product": product.id})
    assert negative.value.param == "unit_amount"
    with pytest.raises(stripe.InvalidRequestError) as bad_expand:
        prices.retrieve("price_missing", params={"expand": ["product"]})
    assert bad_expand.value.http_status == 404
    price = prices.create(params={"currency": "usd", "unit_amount": 1, "product": product.id})
    with pytest.raises(stripe.InvalidRequestError) as not_expandable:
        prices.retrieve(price.id, params={"expand": ["currency"]})
    assert not_expandable.value.param == "expand"
