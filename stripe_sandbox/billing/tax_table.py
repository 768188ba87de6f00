"""The sandbox's tax table: standard rates by country (and state or province where it applies), the tax ID
formats it checks, and the rule it applies. A small table for testing, not tax advice.

- EU members: each one's standard VAT rate (AT 20, BE 21, BG 20, CY 19, CZ 21, DE 19, DK 25, EE 24, ES 21,
  FI 25.5, FR 20, GR 24, HR 25, HU 27, IE 23, IT 22, LT 21, LU 17, LV 21, MT 18, NL 21, PL 23, PT 23, RO 21,
  SE 25, SI 22, SK 23), type ``vat``;
- GB: 20, ``vat``;
- US states: CA 7.25, NY 4, TX 6.25, WA 6.5, ``sales_tax`` (other states: not collecting);
- Canada: GST 5, or HST in place of it (ON 13, NS 14, NB 15, NL 15, PE 15);
- AU: GST 10.

The rule (Stripe Tax's, simplified): a buyer in the seller's country, or a consumer in the EU, pays the
buyer's country's rate; an EU business with a valid VAT ID (``eu_vat``, verified) buying from a seller in
another EU country pays no VAT: ``reverse_charge``. A place not in the table is ``not_collecting``.

Tax ID formats (``tax_ids[].type``): ``eu_vat`` two letters of an EU country (EL for Greece) and 8–12 letters
or digits; ``gb_vat`` GB and 9 or 12 digits; ``au_abn`` 11 digits; ``ca_gst_hst`` 9 digits, RT and 4 digits;
``us_ein`` NN-NNNNNNN. As on Stripe's test mode, a value containing ``111111111`` fails verification
(``unverified``) and any other well-formed value is ``verified``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

EU_VAT = {"AT": "20", "BE": "21", "BG": "20", "CY": "19", "CZ": "21", "DE": "19", "DK": "25", "EE": "24",
          "ES": "21", "FI": "25.5", "FR": "20", "GR": "24", "HR": "25", "HU": "27", "IE": "23", "IT": "22",
          "LT": "21", "LU": "17", "LV": "21", "MT": "18", "NL": "21", "PL": "23", "PT": "23", "RO": "21",
          "SE": "25", "SI": "22", "SK": "23"}
US_STATES = {"CA": "7.25", "NY": "4", "TX": "6.25", "WA": "6.5"}
CA_HST = {"ON": "13", "NS": "14", "NB": "15", "NL": "15", "PE": "15"}
OTHER = {"GB": ("20", "vat"), "AU": ("10", "gst")}

TAX_ID_FORMATS = {
    "eu_vat": re.compile(r"(?:%s)[0-9A-Z]{8,12}" % "|".join(sorted({*EU_VAT, "EL"} - {"GR"}))),
    "gb_vat": re.compile(r"GB(?:\d{9}|\d{12})"),
    "au_abn": re.compile(r"\d{11}"),
    "ca_gst_hst": re.compile(r"\d{9}RT\d{4}"),
    "us_ein": re.compile(r"\d{2}-\d{7}"),
}
FAILS_VERIFICATION = "111111111"


@dataclass(frozen=True)
class Rate:
    percentage: Decimal
    tax_type: str
    country: str
    state: str | None = None


def rate_for(country: str, state: str | None) -> Rate | None:
    """The standard rate where the buyer is, or None when the table has none (not collecting there)."""
    country, state = country.upper(), (state or "").upper() or None
    if country in EU_VAT:
        return Rate(Decimal(EU_VAT[country]), "vat", country)
    if country in OTHER:
        percentage, kind = OTHER[country]
        return Rate(Decimal(percentage), kind, country)
    if country == "US":
        return Rate(Decimal(US_STATES[state]), "sales_tax", country, state) if state in US_STATES else None
    if country == "CA":
        if state in CA_HST:
            return Rate(Decimal(CA_HST[state]), "hst", country, state)
        return Rate(Decimal(5), "gst", country, state)
    return None


def tax_id_problem(kind: str, value: str) -> str | None:
    """Why a tax ID is malformed, or None when it is well formed."""
    pattern = TAX_ID_FORMATS.get(kind)
    if pattern is None:
        return f"The sandbox checks these tax ID types: {', '.join(TAX_ID_FORMATS)}."
    if not pattern.fullmatch(value.replace(" ", "").upper()):
        return f"Invalid value for {kind}."
    return None


def verified(value: str) -> bool:
    return FAILS_VERIFICATION not in value


def reverse_charge(seller_country: str | None, buyer_country: str, tax_ids: list[dict[str, str]]) -> bool:
    """An EU business buying across an EU border with a verified VAT ID pays no VAT (the buyer accounts for it)."""
    if seller_country not in EU_VAT or buyer_country not in EU_VAT or seller_country == buyer_country:
        return False
    return any(t["type"] == "eu_vat" and tax_id_problem("eu_vat", t["value"]) is None and verified(t["value"])
               for t in tax_ids)


def tax_of(amount: int, percentage: Decimal, *, inclusive: bool) -> int:
    """The tax in ``amount`` (inclusive: the share of the total; exclusive: added on top), half up."""
    if inclusive:
        net = Decimal(amount) * 100 / (100 + percentage)
        return int((Decimal(amount) - net).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return int((Decimal(amount) * percentage / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
