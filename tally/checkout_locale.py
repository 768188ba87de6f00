"""The buyer's language for Stripe Checkout: a ``lang``/``locale`` from the frontend becomes one of the locales
Stripe's Checkout supports, else ``auto`` (Checkout then follows the browser). Tally keeps the result on the
order and the user, and receipts and notices speak it.

Source: the ``locale`` enum of ``POST /v1/checkout/sessions`` (stripe-python
``params/checkout/_session_create_params.py``)."""

from __future__ import annotations

CHECKOUT_LOCALES = ("auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
                    "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
                    "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW")
_BY_LOWER = {code.lower(): code for code in CHECKOUT_LOCALES}
# Chinese written the traditional way outside Hong Kong and Taiwan: Stripe's closest is zh-TW.
_ALIASES = {"zh-hans": "zh", "zh-cn": "zh", "zh-sg": "zh", "zh-hant": "zh-TW", "zh-mo": "zh-HK", "no": "nb",
            "nn": "nb", "tl": "fil", "en-us": "en"}
MAX_LENGTH = 35  # BCP 47 tags are short; anything longer is not a language


def checkout_locale(requested: str | None) -> str | None:
    """Stripe's locale for what the frontend sent: exact (``zh``, ``pt-BR``), an alias (``zh-CN`` → ``zh``), or
    the language alone (``de-AT`` → ``de``); anything else ``auto``. None when nothing was asked for."""
    if requested is None or not requested.strip():
        return None
    tag = requested.strip().replace("_", "-").lower()
    if tag in _BY_LOWER:
        return _BY_LOWER[tag]
    if tag in _ALIASES:
        return _ALIASES[tag]
    language = tag.split("-", 1)[0]
    return _BY_LOWER.get(language, "auto")
