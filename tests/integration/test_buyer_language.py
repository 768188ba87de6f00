"""The buyer's language (issue 18, item 4): ``?lang=`` on the compatibility routes and ``locale`` on Tally's own
checkout routes become Checkout's ``locale`` (Stripe's list, else ``auto``); the sandbox's hosted Checkout and
portal pages speak Simplified Chinese for ``zh``; the receipt follows the same locale."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tally.checkout_locale import checkout_locale
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, new_user, pay, sdk, wait_processed
from tests.integration.test_receipts import outbox

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)
SUCCESS_URL = "https://shop.example/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/cancel"


@pytest.mark.parametrize(("asked", "locale"), [
    ("zh", "zh"), ("ZH-cn", "zh"), ("zh_Hans", "zh"), ("zh-TW", "zh-TW"), ("pt-BR", "pt-BR"), ("de-AT", "de"),
    ("en-US", "en"), ("xx", "auto"), ("klingon-tlh", "auto"), (None, None), ("  ", None)])
def test_what_a_frontend_sends_becomes_a_stripe_locale(asked: str | None, locale: str | None) -> None:
    assert checkout_locale(asked) == locale


def test_lang_zh_gives_a_chinese_checkout_and_a_chinese_receipt(tally: Any) -> None:
    user = new_user()
    email = f"{user}@example.com"
    with tally.client(user, email) as client:
        response = client.post("/api/stripe/create-checkout-session?lang=zh", json={
            "priceId": "tally_pack_plus", "userId": user, "userEmail": email, "successUrl": SUCCESS_URL,
            "cancelUrl": CANCEL_URL})
        assert response.status_code == 200, response.text
    session_id = response.json()["data"]["sessionId"]
    assert sdk(tally).v1.checkout.sessions.retrieve(session_id).locale == "zh"

    page = httpx.get(response.json()["data"]["url"])
    assert page.status_code == 200
    assert '<html lang="zh">' in page.text
    for words in ("银行卡信息", "卡号", "持卡人姓名", "支付 $9.99", "优惠码", "测试模式"):
        assert words in page.text, words

    assert pay(tally, session_id, email=email).status_code == 303
    wait_processed(tally, session_id, "checkout.session.completed")
    [receipt] = outbox(tally, email, "receipt")
    assert receipt["subject"].startswith("Tally Demo 收据 INV-")
    assert "感谢您的购买。" in receipt["body"] and "实付金额: US$9.99" in receipt["body"]
    assert "金币: 1,000 + 100 赠送" in receipt["body"] and 'lang="zh"' in receipt["html"]


def test_an_unsupported_lang_is_auto_and_the_page_stays_english(tally: Any) -> None:
    user = new_user()
    with tally.client(user, f"{user}@example.com") as client:
        response = client.post("/api/payment/create-checkout-session?lang=tlh", json={
            "price_usd": 4.99, "coins": 500, "bonus": 0, "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL})
        assert response.status_code == 200, response.text
        started = response.json()
        assert sdk(tally).v1.checkout.sessions.retrieve(started["session_id"]).locale == "auto"
        page = httpx.get(started["checkout_url"])
        assert '<html lang="en">' in page.text and "Card information" in page.text

        own = client.post("/v1/checkout", json={"pack_id": "starter", "locale": "zh-CN"})
        assert own.status_code == 200, own.text
        assert sdk(tally).v1.checkout.sessions.retrieve(own.json()["session_id"]).locale == "zh"
        plain = client.post("/v1/checkout", json={"pack_id": "starter"})
        assert sdk(tally).v1.checkout.sessions.retrieve(plain.json()["session_id"]).locale is None
        too_long = client.post("/v1/checkout", json={"pack_id": "starter", "locale": "x" * 36})
        assert too_long.status_code == 400


def test_the_sandbox_portal_speaks_chinese_for_zh(tally: Any) -> None:
    customer = sdk(tally).v1.customers.create(params={"email": "portal-zh@example.com"})
    chinese = sdk(tally).v1.billing_portal.sessions.create(params={"customer": customer.id, "locale": "zh",
                                                                   "return_url": "https://shop.example"})
    page = httpx.get(chinese.url)
    assert page.status_code == 200 and '<html lang="zh">' in page.text
    assert "账单" in page.text and "付款方式" in page.text and "返回" in page.text
    english = sdk(tally).v1.billing_portal.sessions.create(params={"customer": customer.id,
                                                                   "return_url": "https://shop.example"})
    assert "Payment method" in httpx.get(english.url).text
