"""The billing portal: configurations and sessions through the SDK, the hosted page's forms over HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import stripe

from tests.sandbox.billing_support import T0, Setup, setup
from tests.sandbox.control import control, private_sandbox
from tests.stripe_shapes import assert_stripe_shape

RETURN = "https://shop.example/account"


def _config(client: stripe.StripeClient, products: list[dict[str, Any]] | None = None, **features: Any) -> Any:
    params: dict[str, Any] = {"features": {
        "invoice_history": {"enabled": True},
        "payment_method_update": {"enabled": True},
        "customer_update": {"enabled": True, "allowed_updates": ["email", "name"]},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end", "cancellation_reason": {
            "enabled": True, "options": ["too_expensive", "missing_features", "unused", "other"]}},
        **features}}
    if products:
        params["features"]["subscription_update"] = {
            "enabled": True, "default_allowed_updates": ["price"], "products": products,
            "proration_behavior": "create_prorations"}
    config = client.v1.billing_portal.configurations.create(params=params)  # type: ignore[arg-type]
    assert_stripe_shape(config)
    return config


def _session(client: stripe.StripeClient, customer: str, **params: Any) -> Any:
    params.setdefault("return_url", RETURN)
    session = client.v1.billing_portal.sessions.create(params={"customer": customer, **params})
    assert_stripe_shape(session)
    return session


def _plans(s: Setup) -> tuple[Any, Any, Any, Any]:
    """One product with a basic and a pro monthly price; the customer subscribed to basic."""
    product = s.client.v1.products.create(params={"name": "Tally plan"})
    basic = s.client.v1.prices.create(params={"product": product.id, "unit_amount": 1000, "currency": "usd",
                                              "recurring": {"interval": "month"}, "nickname": "Basic"})
    pro = s.client.v1.prices.create(params={"product": product.id, "unit_amount": 3000, "currency": "usd",
                                            "recurring": {"interval": "month"}, "nickname": "Pro"})
    for obj in (product, basic, pro):
        assert_stripe_shape(obj)
    sub = s.client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": basic.id}]})
    assert_stripe_shape(sub)
    assert sub.status == "active"
    return product, basic, pro, sub


def test_configurations_api(stripe_client: stripe.StripeClient) -> None:
    configs = stripe_client.v1.billing_portal.configurations
    product = stripe_client.v1.products.create(params={"name": "Portal product"})
    price = stripe_client.v1.prices.create(params={"product": product.id, "unit_amount": 500, "currency": "usd",
                                                   "recurring": {"interval": "month"}})
    assert_stripe_shape(product)
    assert_stripe_shape(price)
    config = _config(stripe_client, products=[{"product": product.id, "prices": [price.id]}])
    assert config.id.startswith("bpc_") and config.is_default is False and config.active is True
    features = config.features
    assert features.subscription_update.enabled and features.subscription_update.products[0].prices == [price.id]
    assert features.subscription_update.proration_behavior == "create_prorations"
    assert features.subscription_cancel.cancellation_reason.options == [
        "too_expensive", "missing_features", "unused", "other"]
    assert features.customer_update.allowed_updates == ["email", "name"]

    fetched = configs.retrieve(config.id)
    assert_stripe_shape(fetched)
    assert fetched.features.to_dict() == features.to_dict()
    updated = configs.update(config.id, params={
        "business_profile": {"headline": "Tally billing"}, "default_return_url": RETURN,
        "features": {"subscription_cancel": {"mode": "immediately"}}, "metadata": {"k": "v"}})
    assert_stripe_shape(updated)
    assert updated.business_profile.headline == "Tally billing" and updated.default_return_url == RETURN
    assert updated.features.subscription_cancel.mode == "immediately"
    assert updated.features.subscription_cancel.enabled is True  # untouched parts stay
    assert updated.metadata.to_dict() == {"k": "v"} and updated.updated >= config.updated

    defaults = configs.list(params={"is_default": True})
    assert_stripe_shape(defaults)
    [default] = defaults.data
    assert default.is_default and default.features.subscription_cancel.enabled
    assert default.features.payment_method_update.enabled and default.features.invoice_history.enabled
    every = configs.list(params={"limit": 100})
    assert_stripe_shape(every)
    assert {config.id, default.id} <= {c.id for c in every.data}

    def refused(call: Any, **params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            call(params=params)
        return err.value

    no_products = refused(configs.create, features={"subscription_update": {
        "enabled": True, "default_allowed_updates": ["price"]}})
    assert no_products.param == "features[subscription_update][products]"
    unknown = refused(configs.create, features={"subscription_update": {
        "enabled": True, "products": [{"product": "prod_nope", "prices": [price.id]}]}})
    assert unknown.http_status == 404 and unknown.param == "features[subscription_update][products][0][product]"
    bad_reason = refused(configs.create, features={"subscription_cancel": {
        "enabled": True, "cancellation_reason": {"enabled": True, "options": ["bored"]}}})
    assert bad_reason.param == "features[subscription_cancel][cancellation_reason][options][0]"
    with pytest.raises(stripe.InvalidRequestError) as keep:
        configs.update(default.id, params={"active": False})
    assert keep.value.param == "active"
    missing = refused(configs.create)
    assert missing.param == "features"


def test_sessions_api(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    _, basic, pro, sub = _plans(s)
    session = _session(stripe_client, s.customer.id)
    assert session.id.startswith("bps_") and session.customer == s.customer.id and session.flow is None
    assert session.url.endswith(f"/p/session/{session.id}") and session.return_url == RETURN
    default = stripe_client.v1.billing_portal.configurations.list(params={"is_default": True}).data[0]
    assert session.configuration == default.id
    expanded = stripe_client.v1.billing_portal.sessions.create(params={
        "customer": s.customer.id, "return_url": RETURN, "expand": ["configuration"]})
    assert_stripe_shape(expanded)
    assert expanded.configuration.id == default.id

    config = _config(stripe_client)
    flow = _session(stripe_client, s.customer.id, configuration=config.id, flow_data={
        "type": "subscription_cancel", "subscription_cancel": {"subscription": sub.id},
        "after_completion": {"type": "redirect", "redirect": {"return_url": RETURN + "?canceled=1"}}})
    assert flow.flow.type == "subscription_cancel" and flow.flow.subscription_cancel.subscription == sub.id
    assert flow.flow.after_completion.redirect.return_url == RETURN + "?canceled=1"

    def refused(**params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.billing_portal.sessions.create(params=params)  # type: ignore[arg-type]
        return err.value

    assert refused(return_url=RETURN).param == "customer"
    assert refused(customer=s.customer.id).param == "return_url"  # the default configuration has no default URL
    assert refused(customer="cus_nope", return_url=RETURN).http_status == 404
    other = stripe_client.v1.customers.create(params={"email": "other@example.com"})
    assert_stripe_shape(other)
    foreign = refused(customer=other.id, return_url=RETURN, flow_data={
        "type": "subscription_cancel", "subscription_cancel": {"subscription": sub.id}})
    assert foreign.param == "flow_data[subscription_cancel][subscription]"
    disabled = refused(customer=s.customer.id, return_url=RETURN, configuration=config.id, flow_data={
        "type": "subscription_update", "subscription_update": {"subscription": sub.id}})
    assert disabled.param == "flow_data[type]"


def test_portal_page_switch_plan_cancel_with_reason_and_renew(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    product, basic, pro, sub = _plans(s)
    config = _config(stripe_client, products=[{"product": product.id, "prices": [basic.id, pro.id]}])
    session = _session(stripe_client, s.customer.id, configuration=config.id)

    home = httpx.get(session.url)
    assert home.status_code == 200
    assert "Tally plan" in home.text and "$10.00 per month" in home.text and ">Active<" in home.text
    assert "Renews February 1, 2026" in home.text
    assert f'href="{RETURN}"' in home.text and "Return to Sandbox business" in home.text
    assert "Visa ending in 4242" in home.text
    [invoice] = s.invoices()
    assert f'href="{invoice.hosted_invoice_url}"' in home.text and "View invoice" in home.text

    update_url = f"{session.url}/subscriptions/{sub.id}/update"
    form = httpx.get(update_url)
    assert form.status_code == 200
    assert re.search(rf'<input type="radio" id="price-{basic.id}" name="price" value="{basic.id}" disabled>', form.text)
    assert f'<label for="price-{pro.id}">Tally plan, $30.00 per month</label>' in form.text
    same = httpx.post(update_url, data={"price": basic.id})
    assert same.status_code == 400 and "Choose a new plan." in same.text
    switched = httpx.post(update_url, data={"price": pro.id})
    assert switched.status_code == 303 and switched.headers["location"].endswith("?notice=updated")
    now = s.subscription(sub.id)
    assert now.items.data[0].price.id == pro.id
    items = stripe_client.v1.invoice_items.list(params={"customer": s.customer.id})
    assert_stripe_shape(items)
    assert sorted(i.amount for i in items.data) == [-1000, 3000]  # prorated at the start of the period
    assert "Your plan was updated." in httpx.get(session.url + "?notice=updated").text

    cancel_url = f"{session.url}/subscriptions/{sub.id}/cancel"
    cancel_form = httpx.get(cancel_url)
    assert '<label for="reason">Why are you canceling? (optional)</label>' in cancel_form.text
    assert '<option value="too_expensive">' in cancel_form.text and "February 1, 2026" in cancel_form.text
    assert httpx.post(cancel_url, data={"reason": "bored"}).status_code == 400
    canceled = httpx.post(cancel_url, data={"reason": "too_expensive", "comment": "Need a cheaper plan"})
    assert canceled.status_code == 303
    now = s.subscription(sub.id)
    assert now.status == "active" and now.cancel_at_period_end is True
    details = now.cancellation_details
    assert (details.reason, details.feedback, details.comment) == (
        "cancellation_requested", "too_expensive", "Need a cheaper plan")
    updated = [e for e in s.events() if e["type"] == "customer.subscription.updated"][-1]
    assert_stripe_shape(updated["data"]["object"])
    assert updated["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert updated["data"]["previous_attributes"]["cancellation_details"]["feedback"] is None
    page = httpx.get(session.url)
    assert "Cancels February 1, 2026" in page.text and "Renew plan" in page.text

    renewed = httpx.post(f"{session.url}/subscriptions/{sub.id}/renew")
    assert renewed.status_code == 303
    assert s.subscription(sub.id).cancel_at_period_end is False


def test_update_payment_method_pays_the_past_due_invoice(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    _, basic, _, sub = _plans(s)
    failing = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": s.customer.id})
    assert_stripe_shape(failing)
    assert_stripe_shape(stripe_client.v1.customers.update(
        s.customer.id, params={"invoice_settings": {"default_payment_method": failing.id}}))
    s.advance(T0 + 31 * 86400 + 7200)  # renewal on Feb 1, finalized an hour later, declined
    assert s.subscription(sub.id).status == "past_due"
    session = _session(stripe_client, s.customer.id)
    form = httpx.get(f"{session.url}/payment-method")
    assert '<label for="cardNumber">Card number</label>' in form.text and 'autocomplete="cc-number"' in form.text

    url = f"{session.url}/payment-method"
    card = {"cardNumber": "4000 0000 0000 0341", "cardExpiry": "12 / 34", "cardCvc": "123", "billingName": "Ada"}
    declined = httpx.post(url, data=card)
    assert declined.status_code == 402 and 'role="alert"' in declined.text
    assert s.subscription(sub.id).status == "past_due"
    paid = httpx.post(url, data={**card, "cardNumber": "4242 4242 4242 4242"})
    assert paid.status_code == 303
    assert s.subscription(sub.id).status == "active"
    latest = s.invoices()[-1]
    assert latest.status == "paid" and latest.billing_reason == "subscription_cycle"
    customer = stripe_client.v1.customers.retrieve(s.customer.id)
    assert_stripe_shape(customer)
    pm = stripe_client.v1.payment_methods.retrieve(customer.invoice_settings.default_payment_method)
    assert_stripe_shape(pm)
    assert pm.card.last4 == "4242" and pm.customer == s.customer.id
    bad = httpx.post(url, data={**card, "cardNumber": "4242 4242 4242 4241"})
    assert bad.status_code in (400, 402) and 'id="cardNumber-error"' in bad.text


def test_flows_open_on_their_page_and_finish_as_asked(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    product, basic, pro, sub = _plans(s)
    config = _config(stripe_client, products=[{"product": product.id, "prices": [basic.id, pro.id]}])

    pm_flow = _session(stripe_client, s.customer.id, flow_data={"type": "payment_method_update"})
    assert '<h1 id="pm-title">Update payment method</h1>' in httpx.get(pm_flow.url).text

    update_flow = _session(stripe_client, s.customer.id, configuration=config.id, flow_data={
        "type": "subscription_update", "subscription_update": {"subscription": sub.id},
        "after_completion": {"type": "hosted_confirmation",
                             "hosted_confirmation": {"custom_message": "Enjoy Pro!"}}})
    page = httpx.get(update_flow.url)
    assert '<h1 id="update-title">Switch plan</h1>' in page.text
    done = httpx.post(f"{update_flow.url}/subscriptions/{sub.id}/update", data={"price": pro.id})
    assert done.status_code == 200 and "Enjoy Pro!" in done.text

    cancel_flow = _session(stripe_client, s.customer.id, configuration=config.id, flow_data={
        "type": "subscription_cancel", "subscription_cancel": {"subscription": sub.id},
        "after_completion": {"type": "redirect", "redirect": {"return_url": RETURN + "?canceled=1"}}})
    assert '<h1 id="cancel-title">Cancel plan</h1>' in httpx.get(cancel_flow.url).text
    gone = httpx.post(f"{cancel_flow.url}/subscriptions/{sub.id}/cancel", data={"reason": "unused"})
    assert gone.status_code == 303 and gone.headers["location"] == RETURN + "?canceled=1"
    assert s.subscription(sub.id).cancellation_details.feedback == "unused"

    immediately = _config(stripe_client, subscription_cancel={"enabled": True, "mode": "immediately"})
    now_flow = _session(stripe_client, s.customer.id, configuration=immediately.id)
    ended = httpx.post(f"{now_flow.url}/subscriptions/{sub.id}/cancel", data={})
    assert ended.status_code == 303
    assert s.subscription(sub.id).status == "canceled"
    assert "You have no active plan." in httpx.get(now_flow.url).text


def test_sessions_expire_unvisited_after_five_minutes() -> None:
    with private_sandbox() as (server, client):
        customer = client.v1.customers.create(params={"email": "late@example.com"})
        assert_stripe_shape(customer)
        late = _session(client, customer.id)
        early = _session(client, customer.id)
        assert httpx.get(early.url).status_code == 200  # visited in time
        control(server, "POST", "/_sandbox/clock/advance", seconds=301)
        expired = httpx.get(late.url)
        assert expired.status_code == 410 and "This link has expired" in expired.text
        assert f'href="{RETURN}"' in expired.text
        assert httpx.get(early.url).status_code == 200
        control(server, "POST", "/_sandbox/clock/advance", seconds=3600)
        assert httpx.get(early.url).status_code == 410
        assert httpx.get(f"{server.url}/p/session/bps_nope").status_code == 404


def test_downgrade_waits_for_the_period_end_under_schedule_at_period_end(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    product, basic, pro, sub = _plans(s)
    yearly = stripe_client.v1.prices.create(params={"product": product.id, "unit_amount": 30000, "currency": "usd",
                                                    "recurring": {"interval": "year"}, "nickname": "Pro yearly"})
    config = stripe_client.v1.billing_portal.configurations.create(params={"features": {
        "subscription_update": {
            "enabled": True, "default_allowed_updates": ["price"], "proration_behavior": "always_invoice",
            "products": [{"product": product.id, "prices": [basic.id, pro.id, yearly.id]}],
            "schedule_at_period_end": {"conditions": [{"type": "decreasing_item_amount"},
                                                      {"type": "shortening_interval"}]}},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"}}})
    assert_stripe_shape(config)
    conditions = config.features.subscription_update.schedule_at_period_end.conditions
    assert [c.type for c in conditions] == ["decreasing_item_amount", "shortening_interval"]
    with pytest.raises(stripe.InvalidRequestError) as bad:
        stripe_client.v1.billing_portal.configurations.create(params={"features": {"subscription_update": {
            "schedule_at_period_end": {"conditions": [{"type": "sometimes"}]}}}})
    assert bad.value.param == "features[subscription_update][schedule_at_period_end][conditions][0][type]"
    session = _session(stripe_client, s.customer.id, configuration=config.id)
    update_url = f"{session.url}/subscriptions/{sub.id}/update"

    upgraded = httpx.post(update_url, data={"price": pro.id})  # a higher amount: now, invoiced at once
    assert upgraded.status_code == 303 and upgraded.headers["location"].endswith("?notice=updated")
    assert s.subscription(sub.id)["items"].data[0].price.id == pro.id
    assert s.invoices()[-1].billing_reason == "subscription_update" and s.invoices()[-1].status == "paid"

    form = httpx.get(update_url).text
    assert f'<label for="price-{basic.id}">Tally plan, $10.00 per month, from February 1, 2026</label>' in form
    assert f'<label for="price-{yearly.id}">Tally plan, $300.00 per year</label>' in form
    assert "starts when your current period ends" in form
    scheduled = httpx.post(update_url, data={"price": basic.id})
    assert scheduled.status_code == 303 and scheduled.headers["location"].endswith("?notice=scheduled")
    now = s.subscription(sub.id)
    assert now["items"].data[0].price.id == pro.id and now.schedule is not None
    schedule = stripe_client.v1.subscription_schedules.retrieve(now.schedule)
    assert_stripe_shape(schedule)
    assert [p["items"][0].price for p in schedule.phases] == [pro.id, basic.id]
    assert schedule.phases[1].start_date == now["items"].data[0].current_period_end
    home = httpx.get(session.url + "?notice=scheduled").text
    assert "Switches to Tally plan, $10.00 per month on February 1, 2026" in home
    assert "Your plan will change at the end of the billing period." in home

    kept = httpx.post(f"{session.url}/subscriptions/{sub.id}/keep")
    assert kept.status_code == 303 and kept.headers["location"].endswith("?notice=kept")
    assert s.subscription(sub.id).schedule is None
    assert stripe_client.v1.subscription_schedules.retrieve(schedule.id).status == "released"
    assert "Switches to" not in httpx.get(session.url).text

    httpx.post(update_url, data={"price": basic.id})
    canceled = httpx.post(f"{session.url}/subscriptions/{sub.id}/cancel", data={})
    assert canceled.status_code == 303
    after = s.subscription(sub.id)
    assert after.cancel_at_period_end is True and after.schedule is None  # the pending switch went with it
    assert httpx.post(f"{session.url}/subscriptions/{sub.id}/renew").status_code == 303

    httpx.post(update_url, data={"price": basic.id})
    s.advance(T0 + 31 * 86400 + 7200)
    renewed = s.subscription(sub.id)
    assert renewed["items"].data[0].price.id == basic.id and renewed.status == "active"
    assert s.invoices()[-1].amount_paid == 1000 and s.invoices()[-1].billing_reason == "subscription_cycle"
