"""The hosted pages' words in the session's ``locale``: English, and Simplified Chinese for ``zh`` (the
language of the guides Tally follows). Any other locale, and ``auto``, shows English, as Stripe falls back to
English where it has no translation. A template calls ``_("Pay")``; a missing translation shows the English."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ZH: dict[str, str] = {
    # base.html
    "Test mode: this is the offline Stripe sandbox; no real money moves.": "测试模式：这是离线 Stripe 沙盒，不会产生真实交易。",
    "Powered by the Stripe sandbox": "由 Stripe 沙盒提供支持",
    # checkout.html and its page
    "Checkout": "结账", "Back": "返回", "Sandbox business": "沙盒商家", "Pay": "支付", "Qty": "数量",
    "Subtotal": "小计", "Discount": "折扣", "Promotion code": "优惠码", "applied": "已使用",
    "Remove promotion code": "移除优惠码", "Apply code": "使用优惠码", "Total due": "应付总额",
    "Total due today": "今日应付", "Save a card for future payments": "保存银行卡以便日后付款",
    "You will not be charged now.": "现在不会扣款。", "Card details": "银行卡详情", "Your details": "您的信息",
    "Pay with card": "使用银行卡支付", "Email": "电子邮件", "Card information": "银行卡信息",
    "Card number": "卡号", "Expiry (MM / YY)": "有效期（月 / 年）", "CVC": "安全码",
    "Name on card": "持卡人姓名", "Full name": "全名", "No card is needed today.": "今天无需银行卡。",
    "Test cards": "测试卡", "succeeds": "支付成功", "is declined for insufficient funds": "因余额不足被拒绝",
    "is declined": "被拒绝", "asks for 3-D Secure": "需要 3-D Secure 验证",
    "Use any future expiry date and any CVC.": "可使用任意未来的有效期和任意安全码。",
    "Save card": "保存银行卡", "Tax": "税费", "Calculated from your address": "根据您的地址计算",
    "Billing address": "账单地址", "Country": "国家或地区", "State or province": "州或省", "Postal code": "邮政编码",
    "Business tax ID (optional, e.g. FR12345678901)": "企业税号（可选，例如 FR12345678901）",
    "Subscribe": "订阅", "Donate": "捐款", "Book": "预订",
    "Subscribe to {names}": "订阅 {names}", "Try {names}": "试用 {names}", "{days} days free": "{days} 天免费",
    "then {price} after {days}-day trial": "{days} 天试用期后 {price}",
    # portal.html
    "Billing": "账单", "Return to {business}": "返回 {business}", "Current plan": "当前套餐",
    "Switch plan": "更换套餐", "Cancel plan": "取消套餐", "Keep current plan": "保留当前套餐",
    "Renew plan": "续订套餐", "You have no active plan.": "您目前没有有效的套餐。", "Payment method": "付款方式",
    "No payment method on file.": "未保存付款方式。", "Update payment method": "更新付款方式",
    "Add payment method": "添加付款方式", "Billing information": "账单信息", "Name": "姓名",
    "Invoice history": "账单历史", "Date": "日期", "Amount": "金额", "Status": "状态", "Invoice": "发票",
    "View invoice {number}": "查看发票 {number}", "No invoices yet.": "暂无发票。",
    "Something went wrong": "出现错误", "This link has expired": "此链接已过期",
}

TRANSLATIONS: dict[str, dict[str, str]] = {"zh": ZH}


def language(locale: str | None) -> str:
    """The page's language for a Checkout or portal ``locale``: ``zh`` for Simplified Chinese, else ``en``."""
    return "zh" if (locale or "").lower() == "zh" else "en"


def translator(locale: str | None) -> Callable[..., str]:
    words = TRANSLATIONS.get(language(locale), {})

    def gettext(text: str, **values: Any) -> str:
        return words.get(text, text).format(**values) if values else words.get(text, text)

    return gettext
