"""Subscription schedules through the SDK on test clocks: from_subscription, phases applied at their start
(a downgrade at the period end, a change of interval, a mid-period change with prorations), end_behavior
release and cancel, release, cancel, list, and the errors Stripe gives; schedules created with their own
phases, starting now or later (on a test clock, or the sandbox clock), and the creations Stripe refuses; invoice
previews and ``invoice.upcoming`` that follow the schedule's phases."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.sandbox.billing_support import T0, Setup, prorated, setup
from tests.sandbox.control import control, private_sandbox, wait_until
from tests.stripe_shapes import assert_stripe_shape

DAY = 86400
HOUR = 3600
FEB1, MAR1, APR1 = 1769904000, 1772323200, 1775001600


def _subscribe(s: Setup, price: Any) -> Any:
    sub = s.client.v1.subscriptions.create(params={"customer": s.customer.id, "items": [{"price": price.id}]})
    assert_stripe_shape(sub)
    return sub


def _schedule(s: Setup, sub: Any) -> Any:
    schedule = s.client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    assert_stripe_shape(schedule)
    return schedule


def _then(s: Setup, schedule: Any, price: Any, **params: Any) -> Any:
    """Keep the current phase, then ``price`` for one interval."""
    current = schedule.phases[0]
    updated = s.client.v1.subscription_schedules.update(schedule.id, params={"phases": [
        {"items": [{"price": current["items"][0].price, "quantity": 1}], "start_date": current.start_date,
         "end_date": current.end_date},
        {"items": [{"price": price.id, "quantity": 1}], "duration": {"interval": price.recurring.interval}},
    ], **params})
    assert_stripe_shape(updated)
    return updated


def test_from_subscription_then_downgrade_at_period_end_then_release(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    pro, basic = s.price(3000, name="Pro"), s.price(1000, name="Basic")
    sub = _subscribe(s, pro)
    schedule = _schedule(s, sub)
    assert schedule.id.startswith("sub_sched_") and schedule.status == "active"
    assert schedule.subscription == sub.id and schedule.customer == s.customer.id
    assert schedule.end_behavior == "release" and schedule.test_clock == s.clock.id
    assert (schedule.current_phase.start_date, schedule.current_phase.end_date) == (T0, FEB1)
    [phase] = schedule.phases
    assert (phase.start_date, phase.end_date) == (T0, FEB1)
    assert phase["items"][0].price == pro.id and phase["items"][0].quantity == 1
    assert s.subscription(sub.id).schedule == schedule.id

    updated = _then(s, schedule, basic)
    assert [(p.start_date, p.end_date) for p in updated.phases] == [(T0, FEB1), (FEB1, MAR1)]
    s.advance(T0 + 10 * DAY)
    assert s.subscription(sub.id)["items"].data[0].price.id == pro.id  # nothing changes mid-period
    assert [i.amount_paid for i in s.invoices()] == [3000]

    s.advance(FEB1 + 2 * HOUR)
    after = s.subscription(sub.id)
    assert after["items"].data[0].price.id == basic.id and after["items"].data[0].id == sub["items"].data[0].id
    assert after["items"].data[0].current_period_start == FEB1
    renewal = s.invoices()[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_paid == 1000
    assert [line.amount for line in renewal.lines.data] == [1000]  # no proration at the boundary
    current = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert_stripe_shape(current)
    assert current.status == "active" and current.current_phase.start_date == FEB1

    s.advance(MAR1 + 2 * HOUR)
    released = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert released.status == "released" and released.released_at == MAR1
    assert released.released_subscription == sub.id and released.subscription is None
    assert released.current_phase is None
    final = s.subscription(sub.id)
    assert final.status == "active" and final.schedule is None
    assert final["items"].data[0].price.id == basic.id and s.invoices()[-1].amount_paid == 1000
    types = s.types("subscription_schedule.")
    assert types[0] == "subscription_schedule.created" and types[-1] == "subscription_schedule.released"
    assert types.count("subscription_schedule.updated") == 2  # the new phases, then the phase change
    for event in s.events():
        if event["type"].startswith("subscription_schedule."):
            assert_stripe_shape(event["data"]["object"])


def test_yearly_to_monthly_at_period_end_restarts_the_cycle(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    yearly, monthly = s.price(29000, interval="year", name="Pro yearly"), s.price(2900, name="Pro monthly")
    sub = _subscribe(s, yearly)
    year_end = sub["items"].data[0].current_period_end
    _then(s, _schedule(s, sub), monthly)
    preview = s.client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert [(line.period.start, line.period.end, line.amount) for line in preview.lines.data] == [
        (year_end, year_end + 31 * DAY, 2900)]  # the new phase's first (monthly) period
    s.advance(year_end + 2 * HOUR)
    after = s.subscription(sub.id)
    item = after["items"].data[0]
    assert item.price.id == monthly.id and after.billing_cycle_anchor == year_end
    assert item.current_period_start == year_end and item.current_period_end == year_end + 31 * DAY  # Jan 2027
    renewal = s.invoices()[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_paid == 2900
    assert renewal.lines.data[0].period.start == year_end


def test_mid_period_phase_prorates_like_an_update(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, pro = s.price(1000, name="Basic"), s.price(3000, name="Pro")
    sub = _subscribe(s, basic)
    schedule = _schedule(s, sub)
    switch = T0 + 10 * DAY
    stripe_client.v1.subscription_schedules.update(schedule.id, params={"phases": [
        {"items": [{"price": basic.id}], "end_date": switch},
        {"items": [{"price": pro.id}], "proration_behavior": "create_prorations", "end_date": MAR1}]})
    s.advance(switch + HOUR)
    assert s.subscription(sub.id)["items"].data[0].price.id == pro.id
    pending = stripe_client.v1.invoice_items.list(params={"customer": s.customer.id, "pending": True})
    remaining, whole = FEB1 - switch, FEB1 - T0
    assert sorted(i.amount for i in pending.data) == sorted([-prorated(1000, remaining, whole),
                                                             prorated(3000, remaining, whole)])


def test_end_behavior_cancel_ends_the_subscription_and_completes(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic = s.price(1000)
    sub = _subscribe(s, basic)
    schedule = _schedule(s, sub)
    updated = stripe_client.v1.subscription_schedules.update(schedule.id, params={"end_behavior": "cancel"})
    assert updated.end_behavior == "cancel"
    assert s.subscription(sub.id).cancel_at == FEB1
    with pytest.raises(stripe.InvalidRequestError) as managed:
        stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert "managed by the subscription schedule" in str(managed.value.user_message)
    s.advance(FEB1 + HOUR)
    assert s.subscription(sub.id).status == "canceled"
    done = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert done.status == "completed" and done.completed_at == FEB1
    assert "subscription_schedule.completed" in s.types("subscription_schedule.")
    assert len(s.invoices()) == 1


def test_release_keeps_or_drops_the_cancel_date_and_cancel_ends_both(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic = s.price(1000)
    first = _subscribe(s, basic)
    schedule = _schedule(s, first)
    stripe_client.v1.subscription_schedules.update(schedule.id, params={"end_behavior": "cancel"})
    released = stripe_client.v1.subscription_schedules.release(schedule.id)
    assert_stripe_shape(released)
    assert released.status == "released" and released.released_subscription == first.id
    sub = s.subscription(first.id)
    assert sub.schedule is None and sub.cancel_at is None  # the schedule's cancel date went with it
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.subscription_schedules.release(schedule.id)
    assert "`released` status" in str(again.value.user_message)

    kept = _schedule(s, first)
    stripe_client.v1.subscription_schedules.update(kept.id, params={"end_behavior": "cancel"})
    stripe_client.v1.subscription_schedules.release(kept.id, params={"preserve_cancel_date": True})
    assert s.subscription(first.id).cancel_at == FEB1
    stripe_client.v1.subscriptions.update(first.id, params={"cancel_at": ""})

    last = _schedule(s, first)
    canceled = stripe_client.v1.subscription_schedules.cancel(last.id, params={"prorate": False})
    assert_stripe_shape(canceled)
    assert canceled.status == "canceled" and canceled.canceled_at == T0
    assert s.subscription(first.id).status == "canceled"
    assert s.types("subscription_schedule.")[-1] == "subscription_schedule.canceled"


def test_list_and_refusals(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, pro = s.price(1000), s.price(3000)
    sub = _subscribe(s, basic)
    schedule = _schedule(s, sub)
    listed = stripe_client.v1.subscription_schedules.list(params={"customer": s.customer.id})
    assert_stripe_shape(listed)
    assert [x.id for x in listed.data] == [schedule.id]
    assert stripe_client.v1.subscription_schedules.list(params={"customer": s.customer.id,
                                                                "scheduled": True}).data == []

    def refused(call: Any, *args: Any, **params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            call(*args, params=params)
        return err.value

    schedules = stripe_client.v1.subscription_schedules
    assert refused(schedules.create, from_subscription=sub.id).param == "from_subscription"  # already has one
    assert refused(schedules.create, from_subscription=sub.id, end_behavior="cancel").param == "end_behavior"
    assert refused(schedules.create, customer=s.customer.id).param == "phases"
    assert refused(schedules.create, from_subscription="sub_nope").http_status == 404
    moved = refused(schedules.update, schedule.id, phases=[{"items": [{"price": basic.id}], "start_date": T0 + 5}])
    assert moved.param == "phases[0][start_date]"
    gap = refused(schedules.update, schedule.id, phases=[{"items": [{"price": basic.id}]},
                                                         {"items": [{"price": pro.id}]}])
    assert gap.param == "phases[0][end_date]"
    no_items = refused(schedules.update, schedule.id, phases=[{"items": [], "end_date": FEB1}])
    assert no_items.param == "phases[0][items]"
    yearly = s.price(9000, interval="year")
    mixed = refused(schedules.update, schedule.id, phases=[{"items": [{"price": basic.id}, {"price": yearly.id}]}])
    assert mixed.param == "phases[0][items]"
    assert refused(schedules.update, schedule.id, end_behavior="renew").param == "end_behavior"
    assert refused(schedules.retrieve, "sub_sched_nope").http_status == 404


# -- schedules created with their own phases (customer + phases) -----------------------------------------

def _create(s: Setup, phases: list[dict[str, Any]], **params: Any) -> Any:
    schedule = s.client.v1.subscription_schedules.create(params={"customer": s.customer.id, "phases": phases,
                                                                 **params})
    assert_stripe_shape(schedule)
    return schedule


def _object_of(s: Setup, event_type: str) -> dict[str, Any]:
    [event] = [e for e in s.events() if e["type"] == event_type]
    return event["data"]["object"]


def test_phases_starting_now_create_a_paid_subscription_at_once(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    pro = s.price(3000, name="Pro")
    schedule = _create(s, [{"items": [{"price": pro.id, "quantity": 2}], "iterations": 1, "metadata": {"k": "v"}}],
                       start_date="now", metadata={"plan": "pro"})
    assert schedule.status == "active" and schedule.customer == s.customer.id and schedule.test_clock == s.clock.id
    assert schedule.end_behavior == "release" and schedule.metadata.to_dict() == {"plan": "pro"}
    assert (schedule.current_phase.start_date, schedule.current_phase.end_date) == (T0, FEB1)
    [phase] = schedule.phases
    assert (phase.start_date, phase.end_date, phase.currency) == (T0, FEB1, "usd")
    assert phase["items"][0].price == pro.id and phase["items"][0].quantity == 2
    sub = s.subscription(schedule.subscription)
    assert sub.schedule == schedule.id and sub.status == "active" and sub.start_date == T0
    assert sub.metadata.to_dict() == {"k": "v"}  # a phase's metadata goes to the subscription as it enters the phase
    [item] = sub["items"].data
    assert item.price.id == pro.id and item.quantity == 2
    assert (item.current_period_start, item.current_period_end) == (T0, FEB1)
    [invoice] = s.invoices()
    assert invoice.billing_reason == "subscription_create" and invoice.status == "paid"
    assert invoice.amount_paid == 6000 and sub.latest_invoice == invoice.id
    assert _object_of(s, "customer.subscription.created")["schedule"] == schedule.id  # from its first event
    assert _object_of(s, "subscription_schedule.created")["subscription"] == sub.id
    assert "invoice.paid" in s.types("invoice.")
    listed = stripe_client.v1.subscription_schedules.list(params={"customer": s.customer.id})
    assert [x.id for x in listed.data] == [schedule.id]


def test_start_date_omitted_starts_now_with_the_default_payment_method_given(
        stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client, card=None)
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": s.customer.id})
    basic = s.price(1000)
    schedule = _create(s, [{"items": [{"price": basic.id}]}],
                       default_settings={"default_payment_method": pm.id})
    assert schedule.status == "active" and schedule.default_settings.default_payment_method == pm.id
    sub = s.subscription(schedule.subscription)
    assert sub.default_payment_method == pm.id and sub.status == "active"
    assert [i.amount_paid for i in s.invoices()] == [1000]


def test_a_future_start_waits_then_the_clock_starts_the_subscription(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic = s.price(1000)
    start = T0 + 10 * DAY
    schedule = _create(s, [{"items": [{"price": basic.id}], "iterations": 1}], start_date=start)
    assert schedule.status == "not_started" and schedule.subscription is None and schedule.current_phase is None
    assert (schedule.phases[0].start_date, schedule.phases[0].end_date) == (start, start + 31 * DAY)
    scheduled = stripe_client.v1.subscription_schedules.list(params={"customer": s.customer.id, "scheduled": True})
    assert [x.id for x in scheduled.data] == [schedule.id]
    assert stripe_client.v1.subscriptions.list(params={"customer": s.customer.id}).data == []

    s.advance(start - HOUR)
    assert stripe_client.v1.subscription_schedules.retrieve(schedule.id).status == "not_started"
    s.advance(start + HOUR)
    started = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert_stripe_shape(started)
    assert started.status == "active" and started.subscription is not None
    assert (started.current_phase.start_date, started.current_phase.end_date) == (start, start + 31 * DAY)
    sub = s.subscription(started.subscription)
    assert sub.schedule == schedule.id and sub.status == "active" and sub.start_date == start
    assert sub["items"].data[0].current_period_start == start
    [invoice] = s.invoices()
    assert invoice.amount_paid == 1000 and invoice.created == start
    assert s.types("subscription_schedule.") == ["subscription_schedule.created", "subscription_schedule.updated"]
    assert "customer.subscription.created" in s.types("customer.subscription.")
    assert _object_of(s, "subscription_schedule.created")["status"] == "not_started"


@pytest.mark.parametrize("end_behavior", ["release", "cancel"])
def test_two_phases_change_price_at_the_boundary_then_end_as_told(stripe_client: stripe.StripeClient,
                                                                   end_behavior: str) -> None:
    s = setup(stripe_client)
    basic, pro = s.price(1000, name="Basic"), s.price(3000, name="Pro")
    schedule = _create(s, [{"items": [{"price": basic.id}], "iterations": 1},
                           {"items": [{"price": pro.id}], "iterations": 1}], end_behavior=end_behavior)
    assert [(p.start_date, p.end_date) for p in schedule.phases] == [(T0, FEB1), (FEB1, MAR1)]
    sub_id = schedule.subscription
    assert s.subscription(sub_id).cancel_at == (MAR1 if end_behavior == "cancel" else None)

    s.advance(FEB1 + 2 * HOUR)
    item = s.subscription(sub_id)["items"].data[0]
    assert item.price.id == pro.id and item.current_period_start == FEB1
    renewal = s.invoices()[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_paid == 3000
    current = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert current.status == "active" and current.current_phase.start_date == FEB1

    s.advance(MAR1 + 2 * HOUR)
    ended = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    final = s.subscription(sub_id)
    if end_behavior == "release":
        assert ended.status == "released" and ended.released_subscription == sub_id and ended.released_at == MAR1
        assert final.status == "active" and final.schedule is None
        assert final["items"].data[0].price.id == pro.id and s.invoices()[-1].amount_paid == 3000
    else:
        assert ended.status == "completed" and ended.completed_at == MAR1
        assert final.status == "canceled" and final.ended_at == MAR1
        assert [i.amount_paid for i in s.invoices()] == [1000, 3000]
    assert s.types("subscription_schedule.")[-1] == ("subscription_schedule.released" if end_behavior == "release"
                                                     else "subscription_schedule.completed")


def test_a_schedule_not_started_moves_is_canceled_or_released_without_a_subscription(
        stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, pro = s.price(1000), s.price(3000)
    schedules = stripe_client.v1.subscription_schedules
    later = _create(s, [{"items": [{"price": basic.id}]}], start_date=T0 + 10 * DAY)
    moved = schedules.update(later.id, params={"phases": [{"items": [{"price": pro.id}], "start_date": T0 + 5 * DAY}]})
    assert moved.status == "not_started" and moved.phases[0].start_date == T0 + 5 * DAY
    canceled = schedules.cancel(_create(s, [{"items": [{"price": basic.id}]}], start_date=T0 + 2 * DAY).id)
    assert canceled.status == "canceled" and canceled.canceled_at == T0 and canceled.subscription is None
    released = schedules.release(_create(s, [{"items": [{"price": basic.id}]}], start_date=T0 + 3 * DAY).id)
    assert released.status == "released" and released.released_subscription is None

    s.advance(T0 + 6 * DAY)
    [sub] = stripe_client.v1.subscriptions.list(params={"customer": s.customer.id}).data
    assert sub.schedule == later.id and sub.start_date == T0 + 5 * DAY and sub["items"].data[0].price.id == pro.id
    assert [i.amount_paid for i in s.invoices()] == [3000]

    now = _create(s, [{"items": [{"price": basic.id}]}], start_date=T0 + 20 * DAY)
    started = schedules.update(now.id, params={"phases": [{"items": [{"price": basic.id}], "start_date": "now"}]})
    assert started.status == "active" and started.phases[0].start_date == T0 + 6 * DAY
    assert s.subscription(started.subscription).schedule == now.id


def test_refused_creations_leave_nothing_behind(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic = s.price(1000)
    product = stripe_client.v1.products.create(params={"name": "Setup fee"})
    one_time = stripe_client.v1.prices.create(params={"product": product.id, "unit_amount": 500, "currency": "usd"})
    other = stripe_client.v1.customers.create(params={"test_clock": s.clock.id})
    foreign_pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": other.id})
    phase = {"items": [{"price": basic.id}]}

    def refused(**params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.subscription_schedules.create(params=params)
        assert err.value.http_status == 400 and err.value.error is not None
        assert err.value.error.type == "invalid_request_error"
        return err.value

    customer = s.customer.id
    assert refused(phases=[phase]).param == "customer"
    assert refused(customer=customer).param == "phases"
    assert refused(customer=customer, phases=[{"items": [{"price": one_time.id}]}]).param == \
        "phases[0][items][0][price]"
    assert refused(customer=customer, phases=[{"items": [], "end_date": FEB1}]).param == "phases[0][items]"
    out_of_order = refused(customer=customer, phases=[{**phase, "end_date": T0 + 20 * DAY},
                                                      {**phase, "end_date": T0 + 10 * DAY}])
    assert out_of_order.param == "phases[1][end_date]"
    before_start = refused(customer=customer, start_date=T0 + 10 * DAY, phases=[{**phase, "end_date": T0 + 5 * DAY}])
    assert before_start.param == "phases[0][end_date]"
    assert refused(customer=customer, start_date=T0 - DAY, phases=[phase]).param == "start_date"
    assert refused(customer=customer, phases=[{**phase, "trial_end": T0 + DAY}]).param == "phases[0][trial_end]"
    unknown = refused(customer=customer, phases=[{**phase, "start_date": T0}])
    assert unknown.param == "phases[0][start_date]" and unknown.code == "parameter_unknown"
    assert refused(customer=customer, phases=[phase], billing_mode={"type": "flexible"}).param == "billing_mode"
    assert refused(customer=customer, phases=[phase], default_settings={"collection_method": "send_invoice"}).param \
        == "default_settings[collection_method]"
    assert refused(customer=customer, phases=[phase], default_settings={"default_payment_method": foreign_pm.id}) \
        .param == "default_settings[default_payment_method]"
    assert refused(customer=customer, phases=[phase], end_behavior="renew").param == "end_behavior"
    assert refused(customer=customer, phases=[phase], from_subscription="sub_x").param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.subscription_schedules.create(params={"customer": "cus_nope", "phases": [phase]})
    assert missing.value.http_status == 404 and missing.value.param == "customer"

    assert stripe_client.v1.subscription_schedules.list(params={"customer": customer}).data == []
    assert stripe_client.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data == []
    assert s.invoices() == [] and s.types("subscription_schedule.", "customer.subscription.", "invoice.") == []


def test_a_future_start_on_the_sandbox_clock_starts_when_its_time_comes() -> None:
    with private_sandbox() as (server, client):
        customer = client.v1.customers.create(params={"email": "later@example.com"})
        pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
        product = client.v1.products.create(params={"name": "Plan"})
        price = client.v1.prices.create(params={"product": product.id, "unit_amount": 1000, "currency": "usd",
                                                "recurring": {"interval": "month"}})
        start = control(server, "GET", "/_sandbox/stats")["now"] + DAY
        schedule = client.v1.subscription_schedules.create(params={
            "customer": customer.id, "start_date": start, "phases": [{"items": [{"price": price.id}]}],
            "default_settings": {"default_payment_method": pm.id}})
        assert schedule.status == "not_started" and schedule.test_clock is None
        control(server, "POST", "/_sandbox/clock/advance", seconds=DAY + 1)
        wait_until(lambda: client.v1.subscription_schedules.retrieve(schedule.id).status == "active",
                   what="the schedule to start")
        started = client.v1.subscription_schedules.retrieve(schedule.id)
        sub = client.v1.subscriptions.retrieve(started.subscription)
        assert sub.status == "active" and sub.start_date == start and sub.schedule == schedule.id
        assert sub["items"].data[0].current_period_end == started.current_phase.end_date


# -- invoice previews follow the schedule -------------------------------------------------------------------

def _billed(invoice: dict[str, Any]) -> list[tuple[str, int, int, int, int]]:
    """(price, quantity, amount, period start, period end) of each line billed for a subscription item."""
    return [(line["pricing"]["price_details"]["price"], line["quantity"], line["amount"], line["period"]["start"],
             line["period"]["end"])
            for line in invoice["lines"]["data"] if line["parent"]["type"] == "subscription_item_details"]


def _prorations(invoice: dict[str, Any]) -> list[int]:
    return sorted(line["amount"] for line in invoice["lines"]["data"]
                  if line["parent"]["type"] == "invoice_item_details")


def _preview(s: Setup, **params: Any) -> dict[str, Any]:
    return s.client.v1.invoices.create_preview(params=params).to_dict()


def _basic_then_team(s: Setup, basic: Any, team: Any) -> tuple[Any, Any]:
    """A subscription on ``basic``, scheduled to switch to 3 × ``team`` at its period end (Feb 1) for a month."""
    sub = _subscribe(s, basic)
    schedule = _schedule(s, sub)
    s.client.v1.subscription_schedules.update(schedule.id, params={"phases": [
        {"items": [{"price": basic.id}], "start_date": T0, "end_date": FEB1},
        {"items": [{"price": team.id, "quantity": 3}], "end_date": MAR1}]})
    return sub, schedule


def test_the_preview_bills_the_phase_that_starts_at_the_period_end_until_released(
        stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, team = s.price(1000, name="Basic"), s.price(2500, name="Team")
    sub, schedule = _basic_then_team(s, basic, team)
    preview = _preview(s, subscription=sub.id)
    assert _billed(preview) == [(team.id, 3, 7500, FEB1, MAR1)]
    assert preview["amount_due"] == 7500 and (preview["period_start"], preview["period_end"]) == (T0, FEB1)
    [line] = preview["lines"]["data"]
    assert line["parent"]["subscription_item_details"]["subscription_item"] == sub["items"].data[0].id
    assert _billed(_preview(s, schedule=schedule.id)) == _billed(preview)
    assert s.subscription(sub.id)["items"].data[0].price.id == basic.id  # a preview changes nothing

    stripe_client.v1.subscription_schedules.release(schedule.id)
    assert _billed(_preview(s, subscription=sub.id)) == [(basic.id, 1, 1000, FEB1, MAR1)]


def test_invoice_upcoming_before_the_renewal_shows_the_next_phase(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, team = s.price(1000, name="Basic"), s.price(2500, name="Team")
    _basic_then_team(s, basic, team)
    s.advance(FEB1 - 3 * DAY + HOUR)
    [upcoming] = [e["data"]["object"] for e in s.events() if e["type"] == "invoice.upcoming"]
    assert _billed(upcoming) == [(team.id, 3, 7500, FEB1, MAR1)] and upcoming["amount_due"] == 7500
    s.advance(FEB1 + 2 * HOUR)
    renewal = s.invoices()[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_paid == 7500
    assert _billed(renewal.to_dict()) == _billed(upcoming)


def test_no_upcoming_invoice_when_the_schedule_cancels_at_the_period_end(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic = s.price(1000)
    plain = _subscribe(s, basic)
    stripe_client.v1.subscriptions.update(plain.id, params={"cancel_at_period_end": True})
    scheduled = _subscribe(s, basic)
    schedule = _schedule(s, scheduled)
    stripe_client.v1.subscription_schedules.update(schedule.id, params={"end_behavior": "cancel"})
    for sub in (plain, scheduled):
        with pytest.raises(stripe.InvalidRequestError) as none:
            _preview(s, subscription=sub.id)
        assert none.value.code == "invoice_upcoming_none" and none.value.http_status == 400
    s.advance(FEB1 - 3 * DAY + HOUR)
    assert s.types("invoice.upcoming") == []

    stripe_client.v1.subscription_schedules.update(schedule.id, params={"end_behavior": "release"})
    assert _billed(_preview(s, subscription=scheduled.id)) == [(basic.id, 1, 1000, FEB1, MAR1)]


def test_the_preview_prorates_a_phase_that_starts_mid_period(stripe_client: stripe.StripeClient) -> None:
    s = setup(stripe_client)
    basic, pro, team = s.price(1000, name="Basic"), s.price(3000, name="Pro"), s.price(2500, name="Team")
    sub = _subscribe(s, basic)
    schedule = _schedule(s, sub)
    switch = T0 + 10 * DAY
    stripe_client.v1.subscription_schedules.update(schedule.id, params={"phases": [
        {"items": [{"price": basic.id}], "end_date": switch},
        {"items": [{"price": pro.id}], "proration_behavior": "create_prorations", "end_date": FEB1},
        {"items": [{"price": team.id, "quantity": 2}], "end_date": MAR1}]})
    remaining, whole = FEB1 - switch, FEB1 - T0
    credit, charge = -prorated(1000, remaining, whole), prorated(3000, remaining, whole)
    preview = _preview(s, subscription=sub.id)
    assert _billed(preview) == [(team.id, 2, 5000, FEB1, MAR1)]
    assert _prorations(preview) == sorted([credit, charge]) and preview["amount_due"] == 5000 + credit + charge
    s.advance(FEB1 + 2 * HOUR)
    renewal = s.invoices()[-1].to_dict()
    assert renewal["amount_paid"] == preview["amount_due"]
    assert _billed(renewal) == _billed(preview) and _prorations(renewal) == _prorations(preview)

    at_once = setup(stripe_client)
    sub = _subscribe(at_once, basic)
    schedule = _schedule(at_once, sub)
    stripe_client.v1.subscription_schedules.update(schedule.id, params={"phases": [
        {"items": [{"price": basic.id}], "end_date": switch},
        {"items": [{"price": pro.id}], "proration_behavior": "always_invoice", "end_date": MAR1}]})
    preview = _preview(at_once, subscription=sub.id)
    assert _billed(preview) == [] and _prorations(preview) == sorted([credit, charge])
    at_once.advance(switch + HOUR)
    invoiced = at_once.invoices()[-1].to_dict()
    assert invoiced["billing_reason"] == "subscription_update" and invoiced["amount_paid"] == preview["amount_due"]
