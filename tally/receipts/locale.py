"""The buyer's language in emails: Stripe's Checkout locale (``en``, ``zh``, ``fr-CA``, …) chooses the words
(English or Simplified Chinese; other languages get English words) and, through Babel, how dates and amounts
are written. Amounts stay integers in minor units until they are displayed."""

from __future__ import annotations

from datetime import date, datetime

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency

from .. import currency as money

DEFAULT = "en"

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "receipt_subject": "Your receipt {number} from {seller}", "thanks": "Thank you for your purchase.",
        "pack": "Pack", "coins": "Coins", "bonus": "bonus", "price": "Price", "discount": "Discount",
        "tax": "Tax", "total": "Total paid", "date": "Date", "invoice": "Invoice",
        "pdf_attached": "The invoice is attached as a PDF.", "account": "Your account",
        "refund_subject": "Refund of {amount} from {seller}",
        "refund_intro": "We refunded {amount} of your {pack} purchase (invoice {number}).",
        "coins_back": "Coins taken back", "balance": "Balance now",
        "refund_days": "The money reaches your card within 5 to 10 business days.",
        "renewal_subject": "Your {plan} plan renewed: receipt from {seller}",
        "renewal_intro": "Your {plan} plan renewed and was paid.", "period": "Period", "credits": "Credits added",
        "amount_paid": "Amount paid", "view_invoice": "View and download the invoice",
    },
    "zh": {
        "receipt_subject": "{seller} 收据 {number}", "thanks": "感谢您的购买。",
        "pack": "套餐", "coins": "金币", "bonus": "赠送", "price": "价格", "discount": "折扣",
        "tax": "税费", "total": "实付金额", "date": "日期", "invoice": "发票",
        "pdf_attached": "发票已作为 PDF 附件发送。", "account": "您的账户",
        "refund_subject": "{seller} 退款 {amount}",
        "refund_intro": "我们已退还您购买 {pack} 的 {amount}（发票 {number}）。",
        "coins_back": "收回的金币", "balance": "当前余额",
        "refund_days": "款项将在 5 到 10 个工作日内退回您的银行卡。",
        "renewal_subject": "{seller}：您的 {plan} 套餐已续订",
        "renewal_intro": "您的 {plan} 套餐已续订并付款成功。", "period": "计费周期", "credits": "已添加的点数",
        "amount_paid": "已付金额", "view_invoice": "查看并下载发票",
    },
}


def babel_locale(stripe_locale: str | None) -> Locale:
    """Babel's locale for a Stripe locale; ``auto``, unknown or missing → English."""
    if not stripe_locale or stripe_locale == "auto":
        return Locale.parse(DEFAULT)
    try:
        return Locale.parse(stripe_locale, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT)


def words(stripe_locale: str | None) -> dict[str, str]:
    return WORDS.get(babel_locale(stripe_locale).language, WORDS[DEFAULT])


def format_money(amount: int, currency: str, stripe_locale: str | None) -> str:
    """``$9.99`` in en, ``US$9.99`` in zh, ``9,99 €`` in fr: Babel writes it, from Tally's exact minor units."""
    return format_currency(money.to_major(amount, currency), currency.upper(), locale=babel_locale(stripe_locale))


def format_day(when: date | datetime, stripe_locale: str | None) -> str:
    return format_date(when, format="long", locale=babel_locale(stripe_locale))


def format_count(value: int, stripe_locale: str | None) -> str:
    from babel.numbers import format_decimal

    return format_decimal(value, locale=babel_locale(stripe_locale))
