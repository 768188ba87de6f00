"""Test clocks: create, retrieve, list, delete (with every customer on the clock), advance.

Advancing runs synchronously inside the request: the clock walks through every timer of its objects that
falls due before the target, in time order, with its ``frozen_time`` set to each timer's time (so objects
created then carry that time). The answer is the clock as Stripe answers it, ``status: advancing`` with
``status_details.advancing.target_frozen_time``; by the time the answer leaves, the stored clock is already
``ready`` and ``test_helpers.test_clock.ready`` is emitted, so polling ``retrieve`` until ready (the way
Stripe's docs recommend) returns at once.
"""

from __future__ import annotations

import copy
from typing import Any

from ..billing import subscriptions as subs, timeline
from ..billing.time import CLOCK_TYPE, DAY
from ..errors import invalid_request, no_such
from ..events import emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params
from ..routing import route
from ..store import Obj

DELETES_AFTER = 30 * DAY
MAX_ADVANCE_WITHOUT_SUBSCRIPTIONS = 2 * 366 * DAY


def get_clock(sb: Any, clock_id: str) -> Obj:
    clock = sb.store.get(clock_id, CLOCK_TYPE)
    if clock is None:
        raise no_such("test_clock", clock_id, "test_clock")
    return clock


@route("POST", "/v1/test_helpers/test_clocks", params=("frozen_time", "name", "customer"))
def create(sb: Any, p: Params) -> Obj:
    if "customer" in p:
        raise invalid_request("The sandbox does not support attaching an existing customer yet.", param="customer")
    frozen = p.int("frozen_time", required=True)
    assert frozen is not None
    now = sb.clock.now_int()
    clock: Obj = {
        "id": new_id("clock", 24),
        "object": CLOCK_TYPE,
        "created": now,
        "deletes_after": now + DELETES_AFTER,
        "frozen_time": frozen,
        "livemode": False,
        "name": p.optional_str("name"),
        "status": "ready",
        "status_details": {},
    }
    sb.store.add(clock, CLOCK_TYPE)
    emit(sb, "test_helpers.test_clock.created", clock)
    timeline.at(sb, None, clock["deletes_after"], "clock.auto_delete", clock["id"])
    return clock


@route("GET", "/v1/test_helpers/test_clocks/{clock_id}")
def retrieve(sb: Any, p: Params, clock_id: str) -> Obj:
    return get_clock(sb, clock_id)


@route("GET", "/v1/test_helpers/test_clocks", params=LIST_PARAMS)
def list_(sb: Any, p: Params) -> Obj:
    return paginate(sb.store, sb.store.collection(CLOCK_TYPE), p, "/v1/test_helpers/test_clocks")


def _delete_clock(sb: Any, clock: Obj) -> None:
    store = sb.store
    for customer_id in list(store.collection("customer", "test_clock", clock["id"]).ids):
        for sub_id in list(store.collection("subscription", "customer", customer_id).ids):
            sub = store.objects[sub_id]
            for item in subs.items(sub):
                if item["id"] in store.objects:
                    store.delete(item["id"])
            store.delete(sub_id)
        for invoice_id in list(store.collection("invoice", "customer", customer_id).ids):
            for payment_id in list(store.collection("invoice_payment", "invoice", invoice_id).ids):
                store.delete(payment_id)
            store.delete(invoice_id)
        for item_id in list(store.collection("invoiceitem", "customer", customer_id).ids):
            store.delete(item_id)
        for schedule_id in list(store.collection("subscription_schedule", "customer", customer_id).ids):
            store.delete(schedule_id)
        emit(sb, "customer.deleted", store.objects[customer_id])
        store.delete(customer_id)
    timeline.forget_clock(sb, clock["id"])
    emit(sb, "test_helpers.test_clock.deleted", clock)
    store.delete(clock["id"])


@route("DELETE", "/v1/test_helpers/test_clocks/{clock_id}")
def delete(sb: Any, p: Params, clock_id: str) -> Obj:
    _delete_clock(sb, get_clock(sb, clock_id))
    return {"id": clock_id, "object": CLOCK_TYPE, "deleted": True}


@timeline.timer("clock.auto_delete")
def _auto_delete(sb: Any, clock_id: str) -> None:
    clock = sb.store.get(clock_id, CLOCK_TYPE)
    if clock is not None:
        _delete_clock(sb, clock)


@route("POST", "/v1/test_helpers/test_clocks/{clock_id}/advance", params=("frozen_time",))
def advance(sb: Any, p: Params, clock_id: str) -> Obj:
    clock = get_clock(sb, clock_id)
    target = p.int("frozen_time", required=True)
    assert target is not None
    if target <= clock["frozen_time"]:
        raise invalid_request("The frozen_time must be after the test clock's current frozen_time.",
                              param="frozen_time")
    shortest = subs.shortest_interval(sb, clock_id)
    limit = 2 * shortest if shortest is not None else MAX_ADVANCE_WITHOUT_SUBSCRIPTIONS
    if target - clock["frozen_time"] > limit:
        raise invalid_request("Cannot advance the test clock by more than two intervals of the shortest "
                              "subscription interval on it (or two years without subscriptions).",
                              param="frozen_time")
    clock["status"] = "advancing"
    clock["status_details"] = {"advancing": {"target_frozen_time": target}}
    sb.store.save(clock)
    emit(sb, "test_helpers.test_clock.advancing", clock)
    answer = copy.deepcopy(clock)
    timeline.run_clock(sb, clock, target)
    clock["frozen_time"] = target
    clock["status"] = "ready"
    clock["status_details"] = {}
    sb.store.save(clock)
    emit(sb, "test_helpers.test_clock.ready", clock)
    return answer
