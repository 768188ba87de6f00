"""Tax configuration, the minimum an account has: Stripe Tax settings (retrieve, update: ``status`` turns
``active`` once a head office country is set, as on Stripe) and tax rates (create, retrieve, update, list).
Automatic tax reads the settings (``tax_calculations``, ``checkout_tax``, ``billing.invoice_tax``); tax rates
made here are stored and listed but not applied to Checkout or invoices."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_request, no_such
from ..events import changed, emit
from ..ids import new_id
from ..listing import LIST_PARAMS, paginate
from ..params import Params, merge_metadata
from ..routing import route
from ..store import Obj

SETTINGS_KEY = "tax:settings"
TAX_TYPES = ("amusement_tax", "communications_tax", "gst", "hst", "igst", "jct", "lease_tax", "pst", "qst",
             "retail_delivery_fee", "rst", "sales_tax", "service_tax", "vat")
TAX_BEHAVIORS = ("exclusive", "inclusive", "inferred_by_currency")
ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


# -- Stripe Tax settings ------------------------------------------------------------------------------
def _settings(sb: Any) -> Obj:
    found = sb.store.kv.get(SETTINGS_KEY)
    if found is not None:
        return found
    return {"object": "tax.settings", "defaults": {"provider": "stripe", "tax_behavior": None, "tax_code": None},
            "head_office": None, "livemode": False, "status": "pending",
            "status_details": {"pending": {"missing_fields": ["head_office"]}}}


@route("GET", "/v1/tax/settings")
def retrieve_settings(sb: Any, p: Params) -> Obj:
    return _settings(sb)


@route("POST", "/v1/tax/settings", params=("defaults", "head_office"))
def update_settings(sb: Any, p: Params) -> Obj:
    settings = _settings(sb)
    defaults = p.dict("defaults")
    if defaults is not None:
        defaults.only("tax_behavior", "tax_code")
        if "tax_behavior" in defaults:
            settings["defaults"]["tax_behavior"] = defaults.str("tax_behavior", choices=TAX_BEHAVIORS)
        if "tax_code" in defaults:
            settings["defaults"]["tax_code"] = defaults.optional_str("tax_code")
    office = p.dict("head_office")
    if office is not None:
        address = office.only("address").dict("address", required=True)
        assert address is not None
        address.only(*ADDRESS_FIELDS)
        country = address.str("country", required=True)
        assert country is not None
        if len(country) != 2 or not country.isalpha():
            raise invalid_request(f"Invalid country: {country}", param="head_office[address][country]")
        settings["head_office"] = {"address": {k: address.optional_str(k) for k in ADDRESS_FIELDS}}
        settings["head_office"]["address"]["country"] = country.upper()
    if settings["head_office"] is not None:
        settings["status"], settings["status_details"] = "active", {"active": {}}
    sb.store.set_kv(SETTINGS_KEY, settings)
    emit(sb, "tax.settings.updated", settings)
    return settings


# -- tax rates ----------------------------------------------------------------------------------------
def get_tax_rate(sb: Any, rate_id: str) -> Obj:
    rate = sb.store.get(rate_id, "tax_rate")
    if rate is None:
        raise no_such("tax rate", rate_id, "id")
    return rate


def _percentage(p: Params) -> float:
    raw = p.raw("percentage")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise invalid_request("Missing required param: percentage." if raw is None else
                              f"Invalid decimal: {raw}", param="percentage") from None
    if not 0 <= value <= 100:
        raise invalid_request("Invalid percentage: must be between 0 and 100", param="percentage")
    return value


def _text_fields(rate: Obj, p: Params) -> None:
    for key in ("description", "jurisdiction", "state", "country"):
        if key in p:
            rate[key] = p.optional_str(key)
    if "tax_type" in p:
        rate["tax_type"] = p.str("tax_type", choices=TAX_TYPES)
    if "display_name" in p:
        rate["display_name"] = p.str("display_name", required=True, max_length=50)


@route("POST", "/v1/tax_rates", params=("display_name", "inclusive", "percentage", "active", "country",
                                        "description", "jurisdiction", "metadata", "state", "tax_type"))
def create_tax_rate(sb: Any, p: Params) -> Obj:
    inclusive = p.bool("inclusive")
    if inclusive is None:
        raise invalid_request("Missing required param: inclusive.", param="inclusive", code="parameter_missing")
    rate: Obj = {
        "id": new_id("txr", 24), "object": "tax_rate", "active": p.bool("active", True), "country": None,
        "created": sb.clock.now_int(), "description": None, "display_name": "", "effective_percentage": None,
        "flat_amount": None, "inclusive": inclusive, "jurisdiction": None, "jurisdiction_level": None,
        "livemode": False, "metadata": merge_metadata({}, p.raw("metadata")), "percentage": _percentage(p),
        "rate_type": "percentage", "state": None, "tax_type": None,
    }
    p.str("display_name", required=True, max_length=50)
    _text_fields(rate, p)
    rate["effective_percentage"] = rate["percentage"]
    sb.store.add(rate)
    emit(sb, "tax_rate.created", rate)
    return rate


@route("GET", "/v1/tax_rates/{rate_id}")
def retrieve_tax_rate(sb: Any, p: Params, rate_id: str) -> Obj:
    return get_tax_rate(sb, rate_id)


@route("POST", "/v1/tax_rates/{rate_id}", params=("active", "country", "description", "display_name",
                                                  "jurisdiction", "metadata", "state", "tax_type"))
def update_tax_rate(sb: Any, p: Params, rate_id: str) -> Obj:
    rate = get_tax_rate(sb, rate_id)
    before = dict(rate)
    if "active" in p:
        rate["active"] = p.bool("active")
    if "metadata" in p:
        rate["metadata"] = merge_metadata(rate["metadata"], p.raw("metadata"))
    _text_fields(rate, p)
    sb.store.save(rate)
    previous = changed(rate, before)
    if previous:
        emit(sb, "tax_rate.updated", rate, previous)
    return rate


@route("GET", "/v1/tax_rates", params=(*LIST_PARAMS, "active", "inclusive", "created"))
def list_tax_rates(sb: Any, p: Params) -> Obj:
    active, inclusive = p.bool("active"), p.bool("inclusive")

    def where(rate: Obj) -> bool:
        return (active is None or rate["active"] == active) and (inclusive is None
                                                                 or rate["inclusive"] == inclusive)

    return paginate(sb.store, sb.store.collection("tax_rate"), p, "/v1/tax_rates", where)
