"""Coupons, promotion codes and the discounts they create; how much a discount takes off an amount.

Checkout calls ``apply_discounts`` (or ``resolve_discounts`` + ``create_discount``) for its own totals;
subscriptions keep discount ids in ``discounts`` and invoices apply them line by line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import invalid_request, no_such
from ..events import emit
from ..ids import new_id
from ..params import Params
from ..store import Obj
from .time import add_months


@dataclass
class Redemption:
    """A coupon about to be applied, and the promotion code the customer typed for it, if any."""

    coupon: Obj
    promotion_code: Obj | None = None


def coupon_is_valid(coupon: Obj, now: int) -> bool:
    if coupon.get("redeem_by") is not None and now > coupon["redeem_by"]:
        return False
    if coupon.get("max_redemptions") is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]:
        return False
    return True


def get_coupon(sb: Any, coupon_id: str, param: str = "coupon", now: int | None = None) -> Obj:
    coupon = sb.store.get(coupon_id, "coupon")
    if coupon is None or sb.store.kv.get(f"coupon_deleted:{coupon_id}"):
        raise no_such("coupon", coupon_id, param)
    # ``valid`` turns false when ``redeem_by`` passes, with no event: compute it when read.
    valid = coupon_is_valid(coupon, sb.clock.now_int() if now is None else now)
    if coupon["valid"] != valid:
        coupon["valid"] = valid
        sb.store.save(coupon)
    return coupon


def find_promotion_code(sb: Any, code: str) -> Obj | None:
    """The active promotion code a customer typed (codes are case-insensitive for customers)."""
    for candidate in dict.fromkeys((code, code.upper(), code.lower())):
        for promo_id in reversed(sb.store.collection("promotion_code", "code", candidate).ids):
            promo = sb.store.objects[promo_id]
            if promo["active"]:
                return promo
    return None


def promotion_coupon_id(promo: Obj) -> str:
    coupon = promo["promotion"]["coupon"]
    return coupon["id"] if isinstance(coupon, dict) else coupon


def check_promotion_code(sb: Any, promo: Obj, *, customer: Obj | None, amount: int | None, currency: str | None,
                         now: int, param: str) -> None:
    """Refuse a promotion code that its own rules exclude here, with Stripe's kind of message."""
    code = promo["code"]
    if not promo["active"] or (promo["expires_at"] is not None and now > promo["expires_at"]):
        raise invalid_request(f"This promotion code is inactive or has expired: {code}.", param=param,
                              code="promotion_code_invalid" if promo["active"] else "coupon_expired")
    if promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]:
        raise invalid_request(f"This promotion code has reached its maximum number of redemptions: {code}.",
                              param=param, code="promotion_code_invalid")
    if promo["customer"] is not None and (customer is None or customer["id"] != promo["customer"]):
        raise invalid_request(f"This promotion code cannot be redeemed by this customer: {code}.", param=param,
                              code="promotion_code_invalid")
    _check_restrictions(sb, promo, customer=customer, amount=amount, currency=currency, param=param)


def _check_restrictions(sb: Any, promo: Obj, *, customer: Obj | None, amount: int | None, currency: str | None,
                        param: str) -> None:
    """The code's ``restrictions``: a minimum amount (in its currency), a customer's first transaction."""
    code = promo["code"]
    restrictions = promo["restrictions"]
    minimum = restrictions.get("minimum_amount")
    if minimum is not None and amount is not None and currency == restrictions.get("minimum_amount_currency") \
            and amount < minimum:
        raise invalid_request(f"This promotion code requires a minimum order amount: {code}.", param=param,
                              code="promotion_code_invalid")
    if restrictions.get("first_time_transaction") and customer is not None and \
            has_prior_transactions(sb, customer):
        raise invalid_request(
            f"This promotion code cannot be redeemed because the associated customer has prior transactions: "
            f"{code}.", param=param, code="promotion_code_invalid")


def resolve_discounts(sb: Any, discounts_param: list[Params], *, customer: Obj | None = None,
                      amount: int | None = None, currency: str | None = None, now: int | None = None,
                      param: str = "discounts") -> list[Redemption]:
    """Check ``discounts[][coupon|promotion_code]`` parameters; nothing is redeemed yet."""
    now = sb.clock.now_int() if now is None else now
    out: list[Redemption] = []
    for i, entry in enumerate(discounts_param):
        entry.only("coupon", "promotion_code", "discount")
        if "discount" in entry:
            raise invalid_request("Reusing an existing discount is not supported by the sandbox yet.",
                                  param=f"{param}[{i}][discount]")
        coupon_id, promo_id = entry.optional_str("coupon"), entry.optional_str("promotion_code")
        if bool(coupon_id) == bool(promo_id):
            raise invalid_request("Pass exactly one of `coupon` or `promotion_code` in each discount.",
                                  param=f"{param}[{i}]")
        promo = None
        if promo_id:
            promo = sb.store.get(promo_id, "promotion_code")
            if promo is None:
                raise no_such("promotion code", promo_id, f"{param}[{i}][promotion_code]")
            check_promotion_code(sb, promo, customer=customer, amount=amount, currency=currency, now=now,
                                 param=f"{param}[{i}][promotion_code]")
            coupon_id = promotion_coupon_id(promo)
        assert coupon_id is not None
        coupon = get_coupon(sb, coupon_id, f"{param}[{i}][coupon]", now)
        if not coupon["valid"]:
            raise invalid_request(f"Coupon expired: {coupon_id}", param=f"{param}[{i}][coupon]",
                                  code="coupon_expired")
        if coupon["amount_off"] is not None and currency is not None and coupon["currency"] != currency:
            raise invalid_request(
                f"The coupon {coupon_id} is in {coupon['currency']}, but the amounts are in {currency}.",
                param=f"{param}[{i}][coupon]")
        if any(r.coupon["id"] == coupon_id for r in out):
            raise invalid_request("The same coupon cannot be applied twice.", param=f"{param}[{i}]")
        out.append(Redemption(coupon, promo))
    return out


def redeem(sb: Any, redemption: Redemption) -> None:
    for obj in (redemption.coupon, redemption.promotion_code):
        if obj is not None:
            obj["times_redeemed"] += 1
            if obj["object"] == "coupon":
                obj["valid"] = coupon_is_valid(obj, sb.clock.now_int())
            sb.store.save(obj)


def create_discount(sb: Any, redemption: Redemption, *, customer: str | None, start: int,
                    subscription: str | None = None, checkout_session: str | None = None,
                    invoice: str | None = None) -> Obj:
    """A ``discount`` object for a redeemed coupon; counts the redemption."""
    coupon = redemption.coupon
    end = None
    if coupon["duration"] == "repeating":
        end = add_months(start, coupon["duration_in_months"])
    discount: Obj = {
        "id": new_id("di", 24),
        "object": "discount",
        "checkout_session": checkout_session,
        "customer": customer,
        "customer_account": None,
        "end": end,
        "invoice": invoice,
        "invoice_item": None,
        "promotion_code": redemption.promotion_code["id"] if redemption.promotion_code else None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": start,
        "subscription": subscription,
        "subscription_item": None,
    }
    sb.store.add(discount)
    redeem(sb, redemption)
    return discount


def discount_coupon(sb: Any, discount: Obj) -> Obj:
    return sb.store.objects[discount["source"]["coupon"]]


def amount_off(coupon: Obj, amount: int) -> int:
    """What ``coupon`` takes off ``amount`` (never more than the amount; percentages round half up)."""
    if amount <= 0:
        return 0
    if coupon["percent_off"] is not None:
        return min(amount, int(amount * coupon["percent_off"] / 100 + 0.5))
    return min(amount, int(coupon["amount_off"] or 0))


def apply_discounts(sb: Any, amount: int, currency: str, discounts_param: list[Params], *,
                    customer: Obj | None = None, checkout_session: str | None = None,
                    param: str = "discounts") -> tuple[int, list[Obj], list[dict[str, Any]]]:
    """For Checkout: validate and redeem ``discounts``, returning the amount after them, the discount
    objects and ``total_discount_amounts`` (``[{amount, discount}]``)."""
    now = sb.clock.now_int()
    redemptions = resolve_discounts(sb, discounts_param, customer=customer, amount=amount, currency=currency,
                                    now=now, param=param)
    remaining = amount
    objects: list[Obj] = []
    totals: list[dict[str, Any]] = []
    for redemption in redemptions:
        off = amount_off(redemption.coupon, remaining)
        discount = create_discount(sb, redemption, customer=customer["id"] if customer else None, start=now,
                                   checkout_session=checkout_session)
        remaining -= off
        objects.append(discount)
        totals.append({"amount": off, "discount": discount["id"]})
    return remaining, objects, totals


def new_coupon(sb: Any, p: Params) -> Obj:
    percent_off, amount, currency = _amount_off(p)
    duration, months = _duration(p)
    coupon_id = p.optional_str("id") or new_id("", 8)[1:]
    if sb.store.get(coupon_id) is not None:
        raise invalid_request(f"Coupon already exists: {coupon_id}", param="id", code="resource_already_exists")
    now = sb.clock.now_int()
    redeem_by = p.int("redeem_by")
    if redeem_by is not None and redeem_by <= now:
        raise invalid_request("redeem_by must be in the future.", param="redeem_by")
    name = p.optional_str("name")
    coupon: Obj = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount,
        "applies_to": _applies_to(sb, p.dict("applies_to")),
        "created": now,
        "currency": currency,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": p.int("max_redemptions", minimum=1),
        "metadata": {},
        "name": name,
        "percent_off": percent_off,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": True,
    }
    return coupon


def _amount_off(p: Params) -> tuple[float | None, int | None, str | None]:
    """``percent_off`` or ``amount_off`` (with its ``currency``): exactly one."""
    percent = p.raw("percent_off")
    amount = p.int("amount_off", minimum=1)
    if (percent in (None, "")) == (amount is None):
        raise invalid_request("You must pass exactly one of `percent_off` or `amount_off`.", param="percent_off")
    percent_off = None
    if percent not in (None, ""):
        try:
            percent_off = float(percent)
        except (TypeError, ValueError):
            raise invalid_request(f"Invalid decimal: {percent}", param="percent_off") from None
        if not 0 < percent_off <= 100:
            raise invalid_request("percent_off must be greater than 0 and at most 100.", param="percent_off")
    currency = (p.optional_str("currency") or "").lower() or None
    if amount is not None and currency is None:
        raise invalid_request("You must pass a currency with amount_off.", param="currency", code="parameter_missing")
    return percent_off, amount, currency


def _duration(p: Params) -> tuple[str | None, int | None]:
    """``duration``, and ``duration_in_months`` that ``repeating`` (only) needs."""
    duration = p.str("duration", "once", choices=("once", "repeating", "forever"))
    months = p.int("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise invalid_request("Missing required param: duration_in_months.", param="duration_in_months",
                              code="parameter_missing")
    if duration != "repeating" and months is not None:
        raise invalid_request("duration_in_months is only valid with duration `repeating`.",
                              param="duration_in_months")
    return duration, months


def _applies_to(sb: Any, p: Params | None) -> Obj | None:
    """``applies_to[products][]``: the products a coupon discounts (none named: every product)."""
    if p is None:
        return None
    p.only("products")
    products = p.str_list("products")
    for i, product in enumerate(products):
        if sb.store.get(product, "product") is None:
            raise no_such("product", product, f"applies_to[products][{i}]")
    return {"products": products}


def coupon_applies_to(coupon: Obj, product: str | None) -> bool:
    """Whether ``coupon`` discounts an item of ``product`` (a coupon restricted to products skips others)."""
    restricted = coupon.get("applies_to")
    return restricted is None or product in restricted["products"]


def has_prior_transactions(sb: Any, customer: Obj) -> bool:
    """Stripe's "prior transactions" of a first-time-only code: an invoice, or a successful payment."""
    if len(sb.store.collection("invoice", "customer", customer["id"])) > 0:
        return True
    return any(sb.store.objects[charge_id]["status"] == "succeeded"
               for charge_id in sb.store.collection("charge", "customer", customer["id"]).ids)


def discount_created_event(sb: Any, discount: Obj) -> None:
    """``customer.discount.created``: Stripe announces every discount applied to a customer's objects."""
    if discount["customer"] is not None:
        emit(sb, "customer.discount.created", discount)
