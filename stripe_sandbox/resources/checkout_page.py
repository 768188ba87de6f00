"""The hosted Checkout page at a session's ``url``: plain HTML and a form POST, no JavaScript.

``GET /c/pay/{id}`` shows the order and a card form; ``POST`` pays; ``GET /c/pay/{id}/return`` is where the
3-D Secure page sends the payer back; ``POST /c/pay/{id}/promotion_code`` applies (or removes) a promotion
code when the session allows them, and shows the page again with the new total or the reason it was refused.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..billing.invoicing import interval_text
from ..errors import StripeError
from ..i18n import translator
from ..pages import format_amount, render
from ..routing import PAGE_ROUTES
from ..store import Obj
from ..params import Params
from . import checkout_tax
from .checkout_discounts import apply_code, in_trial, remove_code
from .checkout_flow import Card, Payer, current_intent, needs_card, pay, success_redirect
from .checkout_records import extras, line_items
from .checkout_sessions import expire_session
from .payment_intents import action_url

# Form field names (Stripe's own page uses these ids) -> the StripeError ``param`` a refusal names.
FIELD_OF_PARAM = {"number": "cardNumber", "exp_month": "cardExpiry", "exp_year": "cardExpiry",
                  "cvc": "cardCvc"}
FIELD_OF_CODE = {"incorrect_number": "cardNumber", "invalid_number": "cardNumber",
                 "invalid_expiry_month": "cardExpiry", "invalid_expiry_year": "cardExpiry",
                 "invalid_cvc": "cardCvc"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


@dataclass
class FormState:
    """What the page shows again after a failed attempt."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message shown next to it
    alert: str | None = None  # a decline or other refusal, shown in a role="alert" box


def _sandbox(request: Request) -> Any:
    return request.app.state.sandbox


def _locked_email(sb: Any, session: Obj) -> str | None:
    if session["customer_email"]:
        return str(session["customer_email"])
    if session["customer"]:
        customer = sb.store.get(session["customer"], "customer")
        if customer and customer.get("email"):
            return str(customer["email"])
    return None


def _button(session: Obj) -> str:
    _ = translator(session["locale"])
    if session["mode"] == "setup":
        return _("Save card")
    if session["mode"] == "subscription":
        return _("Subscribe")
    verb = {"donate": "Donate", "book": "Book"}.get(session["submit_type"] or "", "Pay")
    return f"{_(verb)} {format_amount(session['amount_total'], session['currency'])}"


def per_interval(amount: int, currency: str, price: Obj) -> str:
    """``$9.99 per month``, ``$90.00 every 3 months``."""
    count = (price.get("recurring") or {}).get("interval_count", 1)
    return f"{format_amount(amount, currency)} {'per' if count == 1 else 'every'} {interval_text(price)}"


def _trial_days(sb: Any, session: Obj) -> int | None:
    data = extras(sb, session).get("subscription_data") or {}
    if data.get("trial_period_days"):
        return int(data["trial_period_days"])
    if data.get("trial_end"):
        return max(1, math.ceil((data["trial_end"] - sb.clock.now()) / 86400))
    return None


def _recurring_summary(sb: Any, session: Obj, items: list[Obj]) -> Obj:
    """What a subscription costs: the heading, the price per interval and what happens after a trial."""
    first = line_items(sb, session)[0]["price"]
    recurring_total = sum(item["amount_subtotal"] for item in line_items(sb, session))
    price_text = per_interval(recurring_total, session["currency"], first)
    names = " and ".join(item["name"] for item in items)
    days = _trial_days(sb, session) if in_trial(sb, session) else None
    _ = translator(session["locale"])
    if days:
        return {"heading": _("Try {names}", names=names), "total": _("{days} days free", days=days),
                "then": _("then {price} after {days}-day trial", price=price_text, days=days),
                "due_label": _("Total due today")}
    return {"heading": _("Subscribe to {names}", names=names), "total": price_text, "then": None,
            "due_label": _("Total due today")}


def _page(sb: Any, session: Obj, state: FormState | None = None, status: int = 200) -> Response:
    state = state or FormState()
    items = [_item_view(sb, item) for item in line_items(sb, session)]
    total = subtotal = discount = None
    if session["mode"] != "setup":
        total = format_amount(session["amount_total"], session["currency"])
        subtotal = format_amount(session["amount_subtotal"], session["currency"])
        off = session["total_details"]["amount_discount"]
        discount = format_amount(-off, session["currency"]) if session["discounts"] else None
    summary = _recurring_summary(sb, session, items) if session["mode"] == "subscription" else None
    return render("checkout.html", status, locale=session["locale"], session=session, tax=_tax_view(session),
                  countries=COUNTRIES, items=items, total=total, subtotal=subtotal,
                  discount=discount, applied=_applied_code(sb, session), summary=summary, button=_button(session),
                  needs_card=needs_card(session), locked_email=_locked_email(sb, session), values=state.values,
                  errors=state.errors, alert=state.alert)


def _item_view(sb: Any, item: Obj) -> dict[str, Any]:
    price = item["price"]
    product = sb.store.get(price["product"], "product") if isinstance(price, dict) else None
    unit = format_amount(price["unit_amount"], item["currency"]) if isinstance(price, dict) else ""
    if isinstance(price, dict) and price.get("recurring"):
        unit = per_interval(price["unit_amount"], item["currency"], price)
    return {
        "name": item["description"] or "Item",
        "detail": product["description"] if product else None,
        "quantity": item["quantity"],
        "unit": unit,
        "amount": format_amount(item["amount_subtotal"], item["currency"]),
    }


def _applied_code(sb: Any, session: Obj) -> str | None:
    """What the page shows for the session's discount: the promotion code, or the coupon's name."""
    if not session["discounts"]:
        return None
    entry = session["discounts"][0]
    promo = sb.store.get(entry["promotion_code"] or "", "promotion_code")
    coupon = sb.store.objects[entry["coupon"]]
    return promo["code"] if promo else (coupon.get("name") or coupon["id"])


COUNTRIES = (("AT", "Austria"), ("AU", "Australia"), ("BE", "Belgium"), ("BR", "Brazil"), ("CA", "Canada"),
             ("CH", "Switzerland"), ("CN", "China"), ("DE", "Germany"), ("DK", "Denmark"), ("ES", "Spain"),
             ("FI", "Finland"), ("FR", "France"), ("GB", "United Kingdom"), ("IE", "Ireland"), ("IN", "India"),
             ("IT", "Italy"), ("JP", "Japan"), ("MY", "Malaysia"), ("NL", "Netherlands"), ("NO", "Norway"),
             ("PL", "Poland"), ("PT", "Portugal"), ("SE", "Sweden"), ("SG", "Singapore"), ("US", "United States"))


def _tax_view(session: Obj) -> Obj | None:
    """The tax line: its amount and label once an address is known, else a note that it depends on one."""
    if not checkout_tax.enabled(session):
        return None
    if session["automatic_tax"]["status"] != "complete":
        return {"known": False}
    taxes = session["total_details"].get("breakdown", {}).get("taxes") or []
    first = taxes[0] if taxes else None
    reason = first["taxability_reason"] if first else "not_collecting"
    rate = first["rate"] if first else None
    label = "Tax"
    if reason == "reverse_charge":
        label = "VAT reverse charge"
    elif rate is not None and reason == "standard_rated":
        label = f"{rate['display_name']} ({rate['percentage']:g} %){' included' if rate['inclusive'] else ''}"
    return {"known": True, "label": label,
            "amount": format_amount(session["total_details"]["amount_tax"], session["currency"])}


def _closed(session: Obj | None, status: int = 200) -> Response:
    return render("checkout_closed.html", status, session=session)


def _open_session(sb: Any, session_id: str) -> tuple[Obj | None, Response | None]:
    """The session if it can still be paid, else the page to show instead."""
    session = sb.store.get(session_id, "checkout.session")
    if session is None:
        return None, _closed(None, 404)
    if session["status"] == "open" and sb.clock.now() >= session["expires_at"]:
        expire_session(sb, session)  # the scheduler may not have run yet
    if session["status"] != "open":
        return None, _closed(session)
    return session, None


def _read_payer(sb: Any, session: Obj, form: dict[str, str]) -> tuple[Payer | None, Card | None, FormState]:
    """The payer and, when the session needs one, the card; or the form again with what is wrong."""
    values = {k: form.get(k, "").strip() for k in ("email", "cardNumber", "cardExpiry", "billingName")}
    state = FormState(values=values)
    locked = _locked_email(sb, session)
    email = locked or values["email"]
    if not email:
        state.errors["email"] = "Enter your email address."
    elif not EMAIL.match(email):
        state.errors["email"] = "Your email address is invalid."
    if not needs_card(session):
        if state.errors:
            return None, None, state
        return Payer(email=email, name=values["billingName"]), None, state
    card, state = read_card(sb, form, state)
    if card is None:
        return None, None, state
    return Payer(email=email, name=values["billingName"]), card, state


def read_card(sb: Any, form: dict[str, str], state: FormState) -> tuple[Card | None, FormState]:
    values = state.values
    number = re.sub(r"[\s-]", "", values["cardNumber"])
    if not number:
        state.errors["cardNumber"] = "Your card number is incomplete."
    elif not number.isdigit() or not 12 <= len(number) <= 19:
        state.errors["cardNumber"] = "Your card number is invalid."
    exp_month = exp_year = 0
    match = EXPIRY.match(values["cardExpiry"])
    if not values["cardExpiry"]:
        state.errors["cardExpiry"] = "Your card's expiration date is incomplete."
    elif match is None:
        state.errors["cardExpiry"] = "Your card's expiration date is invalid. Use MM / YY."
    else:
        exp_month, exp_year = int(match.group(1)), int(match.group(2))
        exp_year += 2000 if exp_year < 100 else 0
        if not 1 <= exp_month <= 12:
            state.errors["cardExpiry"] = "Your card's expiration month is invalid."
        else:
            now = _year_month(sb)
            if (exp_year, exp_month) < now:
                state.errors["cardExpiry"] = "Your card's expiration year is in the past."
    cvc = form.get("cardCvc", "").strip()
    if not cvc:
        state.errors["cardCvc"] = "Your card's security code is incomplete."
    elif not cvc.isdigit() or not 3 <= len(cvc) <= 4:
        state.errors["cardCvc"] = "Your card's security code is invalid."
    name = values["billingName"]
    if not name:
        state.errors["billingName"] = "Enter the name on your card."
    if state.errors:
        return None, state
    return Card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc), state


def _year_month(sb: Any) -> tuple[int, int]:
    today = datetime.datetime.fromtimestamp(sb.clock.now(), datetime.UTC)
    return today.year, today.month


async def show(request: Request) -> Response:
    sb = _sandbox(request)
    session, closed = _open_session(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    return _page(sb, session)


async def submit(request: Request) -> Response:
    sb = _sandbox(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    # Everything below runs without awaiting, like an API handler: no other request sees a half-done payment.
    session, closed = _open_session(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    payer, card, state = _read_payer(sb, session, form)
    if payer is None:
        return _page(sb, session, state, 400)
    if checkout_tax.enabled(session):
        located = _locate(sb, session, form, state)
        if located is not None:
            return located
    try:
        intent = pay(sb, session, card, payer)
    except StripeError as err:
        return _page(sb, session, refusal(state, err), 402 if err.status == 402 else 400)
    return _after_attempt(sb, session, intent, state)


TAX_ID_TYPES = (("gb_vat", re.compile(r"GB\d")), ("eu_vat", re.compile(r"[A-Z]{2}[0-9A-Z]")),
                ("ca_gst_hst", re.compile(r"\d{9}RT")), ("us_ein", re.compile(r"\d{2}-")),
                ("au_abn", re.compile(r"\d{11}$")))


def _locate(sb: Any, session: Obj, form: dict[str, str], state: FormState) -> Response | None:
    """Tax the session for the address typed; the page again when that changed the total (the payer sees the tax
    before paying), or with what is wrong; None to go on paying."""
    for key in ("country", "state", "postalCode", "taxId"):
        state.values[key] = form.get(key, "").strip()
    country = state.values["country"].upper()
    if len(country) != 2 or not country.isalpha():
        state.errors["country"] = "Select your country."
        return _page(sb, session, state, 400)
    tax_id = state.values["taxId"].replace(" ", "").upper()
    ids = []
    if tax_id:
        kind = next((k for k, pattern in TAX_ID_TYPES if pattern.match(tax_id)), None)
        ids = [Params({"type": kind or "eu_vat", "value": tax_id}, "tax_ids[0]")]
    address = {"country": country, "state": state.values["state"] or None,
               "postal_code": state.values["postalCode"] or None, "city": None, "line1": None, "line2": None}
    try:
        changed = checkout_tax.locate(sb, session, address, ids)
    except StripeError as err:
        state.errors["taxId"] = "Your tax ID is invalid." if err.body.get("code") == "tax_id_invalid" \
            else str(err.body["message"])
        return _page(sb, session, state, 400)
    if changed:
        state.alert = "Tax for your address is included now. Check the total and pay."
        return _page(sb, session, state, 200)
    return None


def refusal(state: FormState, err: StripeError) -> FormState:
    body = err.body
    field_name = FIELD_OF_PARAM.get(body.get("param") or "") or FIELD_OF_CODE.get(body.get("code") or "")
    if field_name and body.get("type") == "card_error" and body.get("code") != "card_declined":
        state.errors[field_name] = str(body["message"])
    else:
        state.alert = str(body["message"])
    return state


def _after_attempt(sb: Any, session: Obj, intent: Obj, state: FormState) -> Response:
    if session["status"] == "complete":
        return RedirectResponse(success_redirect(session), status_code=303)
    redirect = action_url(intent)  # a redirect, Alipay's, or PayNow's QR code page
    if intent.get("status") == "requires_action" and redirect:
        return RedirectResponse(redirect, status_code=303)
    error = intent.get("last_payment_error") or intent.get("last_setup_error") or {}
    state.alert = error.get("message") or "Your payment could not be completed. Try another card."
    return _page(sb, session, state, 402)


async def returned(request: Request) -> Response:
    """Back from 3-D Secure: the PaymentIntent listener has completed the session if authentication passed."""
    sb = _sandbox(request)
    session = sb.store.get(request.path_params["session_id"], "checkout.session")
    if session is not None and session["status"] == "complete":
        return RedirectResponse(success_redirect(session), status_code=303)
    session, closed = _open_session(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    pi = current_intent(sb, session)
    if pi is None:
        return _page(sb, session)
    if pi["status"] == "requires_action":
        state = FormState(alert="Authentication was not completed. Try again or use another card.")
        return _page(sb, session, state, 402)
    return _after_attempt(sb, session, pi, FormState())


async def promotion_code(request: Request) -> Response:
    """Apply the typed code (or remove the applied one) and show the page again with the new total."""
    sb = _sandbox(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    session, closed = _open_session(sb, request.path_params["session_id"])
    if session is None:
        assert closed is not None
        return closed
    state = FormState(values={"promotionCode": form.get("promotionCode", "").strip()})
    if "remove" in form:
        remove_code(sb, session)
        return _page(sb, session, FormState())
    if not session["allow_promotion_codes"]:
        state.alert = "This checkout does not take promotion codes."
        return _page(sb, session, state, 400)
    if not state.values["promotionCode"]:
        state.errors["promotionCode"] = "Enter a promotion code."
        return _page(sb, session, state, 400)
    try:
        apply_code(sb, session, state.values["promotionCode"])
    except StripeError as err:
        state.errors["promotionCode"] = str(err.body["message"])
        return _page(sb, session, state, 400)
    return _page(sb, session, FormState())


PAGE_ROUTES.extend([
    Route("/c/pay/{session_id}/promotion_code", promotion_code, methods=["POST"]),
    Route("/c/pay/{session_id}", show, methods=["GET"]),
    Route("/c/pay/{session_id}", submit, methods=["POST"]),
    Route("/c/pay/{session_id}/return", returned, methods=["GET"]),
])
