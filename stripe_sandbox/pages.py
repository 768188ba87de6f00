"""Hosted pages (Checkout, 3-D Secure): one Jinja environment and money display shared by them.

Templates extend ``base.html`` (blocks ``title`` and ``content``), which carries the "Test mode" banner and
links ``/static/sandbox.css``.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from .i18n import language, translator

ENV = Environment(loader=PackageLoader("stripe_sandbox", "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)

# Stripe's minor-unit rules (docs.stripe.com/currencies), which differ from ISO 4217 for a few currencies.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                          "vuv", "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# ISK is two-decimal in the API for backwards compatibility, but shown without decimals.
SHOWN_WITHOUT_DECIMALS = frozenset({"isk"})

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "nzd": "NZ$",
           "inr": "₹", "krw": "₩", "cny": "CN¥", "brl": "R$", "mxn": "MX$", "chf": "CHF ", "sek": "SEK ",
           "nok": "NOK ", "dkk": "DKK ", "pln": "PLN ", "isk": "ISK ", "huf": "HUF "}


def exponent(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def format_amount(amount: int, currency: str) -> str:
    """``999, "usd"`` -> ``$9.99``; ``1000, "jpy"`` -> ``¥1,000``; unknown currencies get their code."""
    currency = currency.lower()
    exp = exponent(currency)
    shown = 0 if currency in SHOWN_WITHOUT_DECIMALS else exp
    major = amount / (10 ** exp)
    number = f"{major:,.{shown}f}"
    symbol = SYMBOLS.get(currency, currency.upper() + " ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{number.lstrip('-')}"


ENV.filters["money"] = lambda amount, currency: format_amount(int(amount), currency)
ENV.globals["_"] = translator(None)  # pages rendered without a locale speak English
ENV.globals["lang"] = "en"


def render(template: str, status: int = 200, *, locale: str | None = None, **context: Any) -> HTMLResponse:
    """``locale``: the Checkout or portal session's; the page's words follow it (``stripe_sandbox.i18n``)."""
    html = ENV.get_template(template).render(**context, _=translator(locale), lang=language(locale))
    # Hosted pages hold card forms: never cached, never framed.
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status, headers=headers)
