"""Discounts in Checkout: a session's ``discounts`` (``[{coupon, promotion_code}]``), the totals they change, a
promotion code typed on the hosted page, and redemption when the session completes.

A session holds one discount at most, as Stripe's Checkout does. It is checked when it is set and again when
the payer pays (a code can expire or run out in between), and it is redeemed only when the session completes:
in payment mode as a ``discount`` object tied to the session, in subscription mode by the subscription that
the session creates (``billing.discounts`` counts the redemption once, there).
"""

from __future__ import annotations

from typing import Any

from ..billing.discounts import (Redemption, amount_off, coupon_applies_to, create_discount, get_coupon,
                                 resolve_discounts)
from ..errors import StripeError, invalid_request
from ..params import Params
from ..store import Obj
from .checkout_records import extras
from .checkout_tax import refresh as refresh_tax

# What the hosted page says about a typed code (Stripe's page words these briefly too).
UNKNOWN_CODE = "This code is invalid."
EXPIRED_CODE = "This code has expired."
USED_UP_CODE = "This code has already been used the maximum number of times."
NOT_FOR_THESE_ITEMS = "This code is not valid for the items in this order."


def session_discount(redemption: Redemption) -> Obj:
    promo = redemption.promotion_code
    return {"coupon": redemption.coupon["id"], "promotion_code": promo["id"] if promo else None}


def discount_params(session: Obj) -> list[Params]:
    """The session's discounts as ``discounts[]`` parameters (for ``resolve_discounts`` or a subscription)."""
    out = []
    for i, entry in enumerate(session["discounts"] or []):
        key = {"promotion_code": entry["promotion_code"]} if entry["promotion_code"] else {"coupon": entry["coupon"]}
        out.append(Params(key, f"discounts[{i}]"))
    return out


def in_trial(sb: Any, session: Obj) -> bool:
    data = extras(sb, session).get("subscription_data") or {}
    return bool(data.get("trial_period_days") or data.get("trial_end"))


def refresh_totals(sb: Any, session: Obj) -> None:
    """Totals of what is paid today: line items less the discount (nothing during a trial)."""
    if session["mode"] == "setup":
        return
    items = extras(sb, session)["line_items"]
    trial = session["mode"] == "subscription" and in_trial(sb, session)
    subtotal = 0 if trial else sum(item["amount_subtotal"] for item in items)
    discount = 0
    weights = [0] * len(items)
    for entry in session["discounts"] or []:
        # A coupon restricted to products discounts only their items (``applies_to``).
        coupon = sb.store.objects[entry["coupon"]]
        weights = [item["amount_subtotal"] if coupon_applies_to(coupon, _product_of(sb, item)) else 0
                   for item in items]
        discount += amount_off(coupon, sum(weights) - discount)
    remaining = subtotal - discount
    shares = _spread(discount, weights) if not trial else [0] * len(items)
    for item, share in zip(items, shares):
        item["amount_discount"] = share
        item["amount_total"] = item["amount_subtotal"] - share
    session["amount_subtotal"] = subtotal
    session["amount_total"] = remaining
    session["total_details"]["amount_discount"] = discount
    refresh_tax(sb, session)  # tax follows the discounted amounts


def _product_of(sb: Any, item: Obj) -> str | None:
    price = sb.store.get(item["price"], "price") if isinstance(item["price"], str) else item["price"]
    return price["product"] if price else None


def _spread(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders first), so that the parts add up."""
    whole = sum(weights)
    if whole <= 0 or total == 0:
        return [0] * len(weights)
    parts = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in order[:total - sum(parts)]:
        parts[i] += 1
    return parts


def _find_code(sb: Any, code: str) -> Obj | None:
    """The promotion code a customer typed, active or not (to say why it cannot be used); codes are
    case-insensitive for customers, and an active code wins over older inactive ones."""
    found: Obj | None = None
    for candidate in dict.fromkeys((code, code.upper(), code.lower())):
        for promo_id in reversed(sb.store.collection("promotion_code", "code", candidate).ids):
            promo = sb.store.objects[promo_id]
            if promo["active"]:
                return promo
            found = found or promo
    return found


def check_typed_code(sb: Any, session: Obj, code: str) -> Redemption:
    """The redemption for a code typed on the hosted page, or a StripeError whose message the page shows."""
    promo = _find_code(sb, code.strip())
    if promo is None:
        raise invalid_request(UNKNOWN_CODE, param="promotionCode", code="promotion_code_invalid")
    now = sb.clock.now_int()
    coupon = get_coupon(sb, promo["promotion"]["coupon"], now=now)
    expired = promo["expires_at"] is not None and now > promo["expires_at"]
    if expired or (coupon["redeem_by"] is not None and now > coupon["redeem_by"]):
        raise invalid_request(EXPIRED_CODE, param="promotionCode", code="coupon_expired")
    used_up = promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]
    if used_up or (coupon["max_redemptions"] is not None
                   and coupon["times_redeemed"] >= coupon["max_redemptions"]):
        raise invalid_request(USED_UP_CODE, param="promotionCode", code="promotion_code_invalid")
    if not promo["active"]:
        raise invalid_request(UNKNOWN_CODE, param="promotionCode", code="promotion_code_invalid")
    items = extras(sb, session)["line_items"]
    if not any(coupon_applies_to(coupon, _product_of(sb, item)) for item in items):
        raise invalid_request(NOT_FOR_THESE_ITEMS, param="promotionCode", code="promotion_code_invalid")
    customer = sb.store.get(session["customer"] or "", "customer")
    # Any other rule (customer, minimum amount, currency, first order) with the API's own message.
    [redemption] = resolve_discounts(sb, [Params({"promotion_code": promo["id"]}, "discounts[0]")],
                                     customer=customer, amount=_items_subtotal(sb, session),
                                     currency=session["currency"], param="discounts")
    return redemption


def _items_subtotal(sb: Any, session: Obj) -> int:
    return sum(item["amount_subtotal"] for item in extras(sb, session)["line_items"])


def apply_code(sb: Any, session: Obj, code: str) -> None:
    redemption = check_typed_code(sb, session, code)
    session["discounts"] = [session_discount(redemption)]
    refresh_totals(sb, session)
    sb.store.save(session)


def remove_code(sb: Any, session: Obj) -> None:
    session["discounts"] = []
    refresh_totals(sb, session)
    sb.store.save(session)


def recheck(sb: Any, session: Obj, customer: Obj | None) -> None:
    """Before paying: a discount that stopped being valid since it was set is dropped (the totals with it)
    and the payer told why, so that nothing is charged at a price they did not see."""
    if not session["discounts"]:
        return
    try:
        resolve_discounts(sb, discount_params(session), customer=customer, amount=_items_subtotal(sb, session),
                          currency=session["currency"])
    except StripeError as err:
        remove_code(sb, session)
        raise invalid_request(f"The discount could not be applied and was removed: {err.body['message']} "
                              "Check the new total and pay again.", param="discounts") from None


def redeem_for_payment(sb: Any, session: Obj) -> None:
    """Payment mode: the session's discount becomes a ``discount`` object tied to the session, and counts."""
    customer = session["customer"]
    for redemption in resolve_discounts(sb, discount_params(session), currency=session["currency"]):
        create_discount(sb, redemption, customer=customer, start=sb.clock.now_int(),
                        checkout_session=session["id"])
