"""Plan changes that wait for the period end, kept in a Stripe subscription schedule (what Stripe recommends
for downgrades): the current phase runs to the period end, then one period of the new price, then the
schedule releases the subscription, which goes on with that price. Nothing is charged or prorated now;
Stripe bills the new price at the renewal.

The same schedule comes from the billing portal when a customer picks a lower plan there (the portal
configuration's ``schedule_at_period_end``), so the mirror reads the pending change from whatever schedule
the subscription has (``next_change``), never from a record of its own.
"""

from __future__ import annotations

from typing import Any

from ..stripe_gateway import InvalidRequestError, StripeGateway, idempotency_key, is_missing, object_id, stripe_call


async def retrieve(client: StripeGateway, schedule_id: str) -> dict[str, Any] | None:
    async with stripe_call("retrieving a subscription schedule"):
        try:
            return await client.retrieve_subscription_schedule(schedule_id)
        except InvalidRequestError as exc:
            if is_missing(exc):
                return None
            raise


def current_phase(schedule: dict[str, Any]) -> dict[str, Any] | None:
    current = schedule.get("current_phase") or {}
    for phase in schedule.get("phases") or []:
        if phase.get("start_date") == current.get("start_date"):
            return phase
    return None


def next_change(schedule: dict[str, Any] | None) -> tuple[str, int] | None:
    """(price id, start time) of the phase after the current one of a live schedule; None when nothing waits."""
    if not schedule or schedule.get("status") not in ("active", "not_started"):
        return None
    current = current_phase(schedule)
    if current is None:
        return None
    for phase in schedule.get("phases") or []:
        if int(phase.get("start_date") or 0) >= int(current.get("end_date") or 0) and phase.get("items"):
            price = object_id(phase["items"][0].get("price"))
            return (price, int(phase["start_date"])) if price else None
    return None


async def change_at_period_end(client: StripeGateway, subscription: dict[str, Any], *, price_id: str,
                               interval: str, change_id: str) -> dict[str, Any]:
    """Schedule ``price_id`` from the subscription's period end (reusing its schedule if it has one)."""
    schedule_id = object_id(subscription.get("schedule"))
    async with stripe_call("scheduling the plan change"):
        if schedule_id is None:
            schedule = await client.create_subscription_schedule(
                {"from_subscription": subscription["id"]},
                idempotency_key=idempotency_key("subscription_change", change_id, "schedule"))
        else:
            schedule = await client.retrieve_subscription_schedule(schedule_id)
        current = current_phase(schedule) or schedule["phases"][0]
        phases = [
            {"items": [{"price": object_id(i.get("price")), "quantity": int(i.get("quantity") or 1)}
                       for i in current["items"]],
             "start_date": current["start_date"], "end_date": current["end_date"]},
            {"items": [{"price": price_id, "quantity": 1}], "duration": {"interval": interval, "interval_count": 1}},
        ]
        return await client.update_subscription_schedule(
            schedule["id"], {"phases": phases, "end_behavior": "release", "metadata": {"tally_change_id": change_id}},
            idempotency_key=idempotency_key("subscription_change", change_id, "phases"))


async def release(client: StripeGateway, schedule_id: str, *, key: str) -> None:
    """Call off what the schedule holds; the subscription stays as it is. A schedule already gone is fine."""
    async with stripe_call("releasing the subscription schedule"):
        try:
            await client.release_subscription_schedule(schedule_id, idempotency_key=key)
        except InvalidRequestError:
            # Released, canceled or completed meanwhile: nothing waits any more, which is what was asked.
            schedule = await retrieve(client, schedule_id)
            if schedule is not None and schedule.get("status") in ("active", "not_started"):
                raise
