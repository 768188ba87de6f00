"""The hosted customer portal at a billing portal session's ``url``: plain HTML forms, no JavaScript.

``GET /p/session/{id}`` shows the customer's subscriptions, payment method, billing details and invoices (or,
for a session made with ``flow_data``, opens that flow). Each change is a form POST that goes through the same
code as the API (``subscriptions.update`` / ``cancel``, ``attach_to_customer``, subscription schedules), so it
emits the same events. A plan change that meets one of the configuration's ``schedule_at_period_end``
conditions (a lower amount, a shorter interval) waits for the period end in a subscription schedule, which the
customer can call off ("Keep current plan"); any other change applies now and releases such a schedule.
The session id in the URL is the customer's capability, as Stripe's secret URL is; sessions expire as
``billing_portal`` documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..billing import invoicing, schedules, subscriptions as subs
from ..billing.time import now_for
from ..errors import StripeError
from ..pages import format_amount, render
from ..params import Params
from ..routing import PAGE_ROUTES
from ..store import Obj
from . import subscriptions
from .billing_portal import LIFETIME_AFTER_VISIT, VISIT_WITHIN
from .checkout_page import FormState, per_interval, read_card, refusal
from .customers import update as update_customer
from .payment_methods import attach_to_customer, card_payment_method

BUSINESS = "Sandbox business"
INVOICES_SHOWN = 24
REASON_LABELS = {"too_expensive": "It's too expensive", "missing_features": "Some features are missing",
                 "switched_service": "I'm switching to a different service", "unused": "I don't use the service enough",
                 "customer_service": "Customer service was less than expected",
                 "too_complex": "Ease of use was less than expected",
                 "low_quality": "Quality was less than expected", "other": "Other reason"}
STATUS_LABELS = {"active": "Active", "trialing": "Trial", "past_due": "Past due", "unpaid": "Unpaid",
                 "incomplete": "Incomplete", "paused": "Paused"}
NOTICES = {"payment_method": "Your payment method was updated.", "updated": "Your plan was updated.",
           "canceled": "Your plan was canceled.", "renewed": "Your plan was renewed.",
           "scheduled": "Your plan will change at the end of the billing period.",
           "kept": "You keep your current plan: the scheduled change was canceled."}
VISITED = "portal_visited:{}"  # store.kv: session id -> first visit (sandbox time)


def _sandbox(request: Request) -> Any:
    return request.app.state.sandbox


def _day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%B %-d, %Y")


def _open(sb: Any, session_id: str) -> tuple[Obj | None, Response | None]:
    """The session if it can still be used, else the page that says it cannot."""
    session = sb.store.get(session_id, "billing_portal.session")
    if session is None:
        return None, render("portal.html", 404, view="missing", business=BUSINESS, session=None)
    now = sb.clock.now()
    visited = sb.store.kv.get(VISITED.format(session_id))
    if visited is None and now > session["created"] + VISIT_WITHIN:
        return None, render("portal.html", 410, view="expired", business=BUSINESS, session=session)
    if visited is not None and now > visited + LIFETIME_AFTER_VISIT:
        return None, render("portal.html", 410, view="expired", business=BUSINESS, session=session)
    if visited is None:
        sb.store.set_kv(VISITED.format(session_id), now)
    return session, None


def _config(sb: Any, session: Obj) -> Obj:
    return sb.store.objects[session["configuration"]]


def _live_subscriptions(sb: Any, customer_id: str) -> list[Obj]:
    ids = sb.store.collection("subscription", "customer", customer_id).newest_first()
    return [s for s in (sb.store.objects[i] for i in ids) if s["status"] not in subs.TERMINAL]


def _plan_name(sb: Any, price: Obj) -> str:
    product = sb.store.get(price["product"], "product") or {}
    return str(product.get("name") or price.get("nickname") or price["id"])


def _next_date(sub: Obj) -> str:
    """What happens to the subscription next, and when: it cancels, its trial ends, or it renews."""
    end = subs.period(sub)[1]
    if sub["cancel_at_period_end"] or sub["cancel_at"]:
        return f"Cancels {_day(sub['cancel_at'] or end)}"
    if sub["status"] == "trialing" and sub["trial_end"]:
        return f"Trial ends {_day(sub['trial_end'])}"
    return f"Renews {_day(end)}"


def _scheduled_switch(sb: Any, sub: Obj) -> str | None:
    """The plan change its schedule will make at the next phase, in words; None without one."""
    schedule = schedules.of_subscription(sb, sub)
    upcoming = schedules.next_phase(schedule) if schedule is not None else None
    if upcoming is None:
        return None
    later = sb.store.objects[upcoming["items"][0]["price"]]
    cost = per_interval(int(later["unit_amount"] or 0), later["currency"], later)
    return f"Switches to {_plan_name(sb, later)}, {cost} on {_day(upcoming['start_date'])}"


def _sub_view(sb: Any, sub: Obj, config: Obj) -> Obj:
    item = subs.items(sub)[0]
    price = item["price"]
    amount = sum(int(i["price"]["unit_amount"] or 0) * i["quantity"] for i in subs.items(sub))
    when = _next_date(sub)
    features = config["features"]
    scheduled = _scheduled_switch(sb, sub)
    return {
        "id": sub["id"], "name": " + ".join(_plan_name(sb, i["price"]) for i in subs.items(sub)),
        "price": per_interval(amount, sub["currency"], price), "status": sub["status"],
        "status_label": STATUS_LABELS.get(sub["status"], sub["status"]), "when": when,
        "can_update": bool(_choices(sb, config, sub)) and len(subs.items(sub)) == 1
        and sub["status"] in ("active", "trialing"),
        "can_cancel": features["subscription_cancel"]["enabled"] and not sub["cancel_at_period_end"],
        "can_renew": bool(sub["cancel_at_period_end"]),
        "scheduled": scheduled, "can_keep": scheduled is not None,
    }


def waits_for_period_end(config: Obj, old: Obj, new: Obj, quantity: int = 1) -> bool:
    """Whether the configuration's ``schedule_at_period_end`` conditions hold off a change from price ``old``
    to ``new`` until the period ends."""
    conditions = {c["type"] for c in config["features"]["subscription_update"]["schedule_at_period_end"]["conditions"]}
    if "decreasing_item_amount" in conditions and int(new["unit_amount"] or 0) * quantity < \
            int(old["unit_amount"] or 0) * quantity:
        return True
    return "shortening_interval" in conditions and schedules.shorter(old, new)


def _choices(sb: Any, config: Obj, sub: Obj) -> list[Obj]:
    """The prices the configuration offers to switch to (each with its product), for one subscription."""
    update = config["features"]["subscription_update"]
    if not update["enabled"] or "price" not in update["default_allowed_updates"]:
        return []
    item = subs.items(sub)[0]
    current = item["price"]["id"]
    out = []
    for product in update["products"] or []:
        for price_id in product["prices"]:
            price = sb.store.get(price_id, "price")
            if price is None or not price["active"] or price["currency"] != sub["currency"]:
                continue
            out.append({"id": price_id, "name": _plan_name(sb, price), "current": price_id == current,
                        "price": per_interval(int(price["unit_amount"] or 0), price["currency"], price),
                        "later": waits_for_period_end(config, item["price"], price, item["quantity"])})
    return out if any(not c["current"] for c in out) else []


def _card_view(sb: Any, customer: Obj) -> Obj | None:
    pm = sb.store.get((customer.get("invoice_settings") or {}).get("default_payment_method") or "",
                      "payment_method")
    if pm is None or pm["type"] != "card":
        return None
    card = pm["card"]
    return {"brand": card["brand"].title(), "last4": card["last4"],
            "expires": f"{card['exp_month']:02d}/{card['exp_year']}"}


def _invoices(sb: Any, customer_id: str) -> list[Obj]:
    out = []
    for invoice_id in sb.store.collection("invoice", "customer", customer_id).newest_first():
        invoice = sb.store.objects[invoice_id]
        if invoice["status"] == "draft":
            continue
        out.append({"date": _day(invoice["created"]), "amount": format_amount(invoice["total"], invoice["currency"]),
                    "status": invoice["status"].replace("_", " ").title(), "url": invoice["hosted_invoice_url"],
                    "number": invoice["number"] or invoice["id"]})
        if len(out) == INVOICES_SHOWN:
            break
    return out


def _page(sb: Any, session: Obj, view: str, status: int = 200, **context: Any) -> Response:
    customer = sb.store.objects[session["customer"]]
    config = _config(sb, session)
    base = f"/p/session/{session['id']}"
    return render("portal.html", status, locale=session["locale"], view=view, session=session, base=base,
                  business=BUSINESS,
                  headline=config["business_profile"]["headline"], features=config["features"], customer=customer,
                  card=_card_view(sb, customer), **context)


def _home(sb: Any, session: Obj, notice: str | None = None, alert: str | None = None, status: int = 200) -> Response:
    config = _config(sb, session)
    subscriptions_ = [_sub_view(sb, s, config) for s in _live_subscriptions(sb, session["customer"])]
    invoices = _invoices(sb, session["customer"]) if config["features"]["invoice_history"]["enabled"] else []
    return _page(sb, session, "home", status, subscriptions=subscriptions_, invoices=invoices,
                 notice=NOTICES.get(notice or ""), alert=alert)


def _flow_subscription(session: Obj, kind: str) -> str | None:
    flow = session["flow"] or {}
    return ((flow.get(kind) or {}) if flow.get("type") == kind else {}).get("subscription")


def _after(sb: Any, session: Obj, notice: str) -> Response:
    """Where a completed change leads: the flow's ``after_completion``, or back to the portal's home."""
    flow = session["flow"]
    after = (flow or {}).get("after_completion") or {"type": "portal_homepage"}
    if flow and after["type"] == "redirect":
        return RedirectResponse(after["redirect"]["return_url"], status_code=303)
    if flow and after["type"] == "hosted_confirmation":
        message = (after.get("hosted_confirmation") or {}).get("custom_message")
        return _page(sb, session, "done", message=message or NOTICES[notice])
    return RedirectResponse(f"/p/session/{session['id']}?notice={notice}", status_code=303)


async def home(request: Request) -> Response:
    sb = _sandbox(request)
    session, closed = _open(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    flow = session["flow"] or {}
    notice = request.query_params.get("notice")
    if flow and notice is None:  # a deep link opens on its flow
        if flow["type"] == "payment_method_update":
            return _page(sb, session, "payment_method", values={}, errors={}, alert=None)
        kind = flow["type"]
        sub = sb.store.get(_flow_subscription(session, kind) or "", "subscription")
        if sub is not None and sub["status"] not in subs.TERMINAL:
            return _subscription_view(sb, session, sub, "update" if kind == "subscription_update" else "cancel")
    return _home(sb, session, notice)


# -- payment method ------------------------------------------------------------------------------------

async def payment_method_form(request: Request) -> Response:
    sb = _sandbox(request)
    session, closed = _open(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    if not _config(sb, session)["features"]["payment_method_update"]["enabled"]:
        return _home(sb, session, alert="Updating the payment method is not available.", status=403)
    return _page(sb, session, "payment_method", values={}, errors={}, alert=None)


async def payment_method_submit(request: Request) -> Response:
    sb = _sandbox(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    session, closed = _open(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    if not _config(sb, session)["features"]["payment_method_update"]["enabled"]:
        return _home(sb, session, alert="Updating the payment method is not available.", status=403)
    state = FormState(values={k: form.get(k, "").strip() for k in ("cardNumber", "cardExpiry", "billingName")})
    card, state = read_card(sb, form, state)
    if card is None:
        return _page(sb, session, "payment_method", 400, values=state.values, errors=state.errors, alert=None)
    customer = sb.store.objects[session["customer"]]
    try:
        pm = card_payment_method(sb, number=card.number, exp_month=card.exp_month, exp_year=card.exp_year,
                                 cvc=card.cvc, billing_details={"name": state.values["billingName"],
                                                                "email": customer.get("email")})
        attach_to_customer(sb, pm["id"], customer)
        update_customer(sb, Params({"invoice_settings": {"default_payment_method": pm["id"]}}), customer["id"])
        live = _live_subscriptions(sb, customer["id"])
        for sub in live:  # a subscription's own default would otherwise keep charging the old card
            if sub["default_payment_method"] and sub["status"] != "incomplete_expired":
                subscriptions.update(sb, Params({"default_payment_method": pm["id"]}), sub["id"])
        _pay_overdue(sb, live, pm["id"])
    except StripeError as err:
        state = refusal(state, err)
        return _page(sb, session, "payment_method", 402 if err.status == 402 else 400, values=state.values,
                     errors=state.errors, alert=state.alert)
    return _after(sb, session, "payment_method")


def _pay_overdue(sb: Any, live: list[Obj], pm_id: str) -> None:
    """As Stripe's portal does: an invoice left open by a failed payment is paid at once with the new card."""
    for sub in live:
        if sub["status"] not in ("past_due", "unpaid", "incomplete"):
            continue
        invoice = sb.store.get(sub["latest_invoice"] or "", "invoice")
        if invoice is None or invoice["status"] != "open" or invoice["collection_method"] != "charge_automatically":
            continue
        error = invoicing.attempt_payment(sb, invoice, pm_id, off_session=False)
        if error is not None:
            raise error


# -- plan changes --------------------------------------------------------------------------------------

def _subscription_view(sb: Any, session: Obj, sub: Obj, view: str, status: int = 200, **context: Any) -> Response:
    config = _config(sb, session)
    features = config["features"]
    context.setdefault("alert", None)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    reasons = features["subscription_cancel"]["cancellation_reason"]
    end = subs.period(sub)[1]
    choices = _choices(sb, config, sub)
    return _page(sb, session, view, status, sub=_sub_view(sb, sub, config), choices=choices,
                 any_later=any(c["later"] for c in choices),
                 reasons=[(r, REASON_LABELS[r]) for r in reasons["options"]] if reasons["enabled"] else [],
                 at_period_end=features["subscription_cancel"]["mode"] == "at_period_end", period_end=_day(end),
                 **context)


def _subscription(sb: Any, session: Obj, sub_id: str) -> Obj | None:
    """The customer's own live subscription, and in a flow only the flow's."""
    sub = sb.store.get(sub_id, "subscription")
    if sub is None or sub["customer"] != session["customer"] or sub["status"] in subs.TERMINAL:
        return None
    flow = session["flow"]
    if flow and flow["type"] in ("subscription_cancel", "subscription_update") \
            and _flow_subscription(session, flow["type"]) != sub_id:
        return None
    return sub


async def subscription_page(request: Request) -> Response:
    sb = _sandbox(request)
    session, closed = _open(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    sub = _subscription(sb, session, request.path_params["sub_id"])
    view = request.path_params["action"]
    if sub is None or view not in ("update", "cancel"):
        return _home(sb, session, alert="That subscription cannot be changed here.", status=404)
    return _subscription_view(sb, session, sub, view)


async def subscription_submit(request: Request) -> Response:
    sb = _sandbox(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    session, closed = _open(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    sub = _subscription(sb, session, request.path_params["sub_id"])
    action = request.path_params["action"]
    if sub is None or action not in ("update", "cancel", "renew", "keep"):
        return _home(sb, session, alert="That subscription cannot be changed here.", status=404)
    config = _config(sb, session)
    try:
        if action == "update":
            return _switch(sb, session, sub, config, form.get("price", ""))
        if action == "cancel":
            return _cancel(sb, session, sub, config, form.get("reason", ""), form.get("comment", "").strip())
        if action == "keep":
            _release(sb, sub)
            return _after(sb, session, "kept")
        subscriptions.update(sb, Params({"cancel_at_period_end": "false"}), sub["id"])
        return _after(sb, session, "renewed")
    except StripeError as err:
        return _subscription_view(sb, session, sub, "cancel" if action == "cancel" else "update",
                                  402 if err.status == 402 else 400, alert=str(err.body["message"]))


def _switch(sb: Any, session: Obj, sub: Obj, config: Obj, price_id: str) -> Response:
    offered = {c["id"]: c for c in _choices(sb, config, sub)}
    if price_id not in offered or offered[price_id]["current"]:
        return _subscription_view(sb, session, sub, "update", 400, errors={"price": "Choose a new plan."})
    item = subs.items(sub)[0]
    if offered[price_id]["later"]:
        schedules.schedule_price_at_period_end(sb, sub, sb.store.objects[price_id], item["quantity"])
        return _after(sb, session, "scheduled")
    _release(sb, sub)  # a change now replaces the one that waited
    behavior = config["features"]["subscription_update"]["proration_behavior"]
    subscriptions.update(sb, Params({"items": [{"id": item["id"], "price": price_id}],
                                     "proration_behavior": behavior}), sub["id"])
    return _after(sb, session, "updated")


def _release(sb: Any, sub: Obj) -> None:
    schedule = schedules.of_subscription(sb, sub)
    if schedule is not None:
        schedules.release(sb, schedule, now_for(sb, sub))


def _cancel(sb: Any, session: Obj, sub: Obj, config: Obj, reason: str, comment: str) -> Response:
    feature = config["features"]["subscription_cancel"]
    if not feature["enabled"]:
        return _home(sb, session, alert="Canceling is not available.", status=403)
    options = feature["cancellation_reason"]["options"] if feature["cancellation_reason"]["enabled"] else []
    if reason and reason not in options:
        return _subscription_view(sb, session, sub, "cancel", 400, errors={"reason": "Choose a reason from the list."})
    details: dict[str, str] = {}
    if reason:
        details["feedback"] = reason
    if comment:
        details["comment"] = comment[:500]
    if feature["mode"] == "at_period_end":
        _release(sb, sub)  # nothing is left to switch to once the plan ends with the period
        params: dict[str, Any] = {"cancel_at_period_end": "true"}
        if details:
            params["cancellation_details"] = details
        subscriptions.update(sb, Params(params), sub["id"])
    else:
        params = {"prorate": "true" if feature["proration_behavior"] != "none" else "false",
                  "invoice_now": "true" if feature["proration_behavior"] == "always_invoice" else "false"}
        if details:
            params["cancellation_details"] = details
        subscriptions.cancel(sb, Params(params), sub["id"])
    return _after(sb, session, "canceled")


PAGE_ROUTES.extend([
    Route("/p/session/{session_id}", home, methods=["GET"]),
    Route("/p/session/{session_id}/payment-method", payment_method_form, methods=["GET"]),
    Route("/p/session/{session_id}/payment-method", payment_method_submit, methods=["POST"]),
    Route("/p/session/{session_id}/subscriptions/{sub_id}/{action}", subscription_page, methods=["GET"]),
    Route("/p/session/{session_id}/subscriptions/{sub_id}/{action}", subscription_submit, methods=["POST"]),
])
