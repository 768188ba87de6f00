"""No secret and no card data in the logs of a full run.

A fresh Tally (so start-up is included) logs at DEBUG while it serves a purchase paid by card, a declined
card, a PaymentIntent order, a spend through the API key, a page sign-in with a token in the URL, and a
handful of refused requests (forged token, wrong API key, bad webhook signature). Everything written to
stdout/stderr and every log record is then searched for the exact secrets of that run and for card data.
The offline Stripe sandbox runs in the same process and sees the card form as Stripe would; its own lines
are left out, since in production that side is Stripe's."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid

import httpx
import pytest

from tally.stripe_gateway import SANDBOX_KEY
from tests.integration.purchase_flow import (DECLINED, STRIPE_HTTPX_WARNING, VISA, checkout, new_user,
                                             wait_until)
from tests.tally_harness import TallyServer
from tests.waiting import poll, sql_at
from tests.webhook_signing import make_event, sign

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

CVC = "739"
CARD_PATTERNS = [re.compile(r"(?<!\d)" + r"[ -]?".join(number) + r"(?!\d)") for number in (VISA, DECLINED)]
CVC_PATTERN = re.compile(r"(?i)cvc\W{1,6}" + CVC)
SANDBOX_LOGGERS = ("stripe_sandbox",)


def pay(tally: TallyServer, session_id: str, card: str) -> httpx.Response:
    with httpx.Client(base_url=tally.sandbox.url, timeout=30) as page:
        return page.post(f"/c/pay/{session_id}", data={
            "email": "buyer@example.com", "cardNumber": card, "cardExpiry": "12 / 34", "country": "US", "cardCvc": CVC,
            "billingName": "Ada Lovelace"})


def full_run(tally: TallyServer) -> list[str]:
    """Drive the service; the credentials and client secrets it handled."""
    seen: list[str] = []
    user = new_user()
    login = httpx.post(tally.url + "/dev/login", json={"user_id": user, "email": f"{user}@example.com"}, timeout=30)
    assert login.status_code == 200
    token = login.json()["token"]
    seen.append(token)
    with httpx.Client(base_url=tally.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        paid = checkout(client)
        assert pay(tally, paid["session_id"], VISA).status_code in (200, 303)
        wait_until(lambda: client.get(f"/v1/orders/{paid['order_id']}").json()["status"] == "paid", "paid")
        declined = checkout(client)
        pay(tally, declined["session_id"], DECLINED)
        order = client.post("/v1/orders", json={"pack_id": "starter"}).json()["order_id"]
        intent = client.post(f"/v1/orders/{order}/payment-intent", json={}).json()
        seen.append(intent["client_secret"])
        confirmed = client.post(f"/v1/orders/{order}/confirm", json={"payment_method_id": "pm_card_visa"})
        assert confirmed.status_code == 200, confirmed.text
        wait_until(lambda: client.get(f"/v1/orders/{order}").json()["status"] == "paid", "PaymentIntent paid")
        unlucky = client.post("/v1/orders", json={"pack_id": "starter"}).json()["order_id"]
        refused = client.post(f"/v1/orders/{unlucky}/confirm",
                              json={"payment_method_id": "pm_card_visa_chargeDeclined"})
        assert refused.status_code == 402, refused.text
    with tally.admin_client() as admin:
        spent = admin.post("/v1/credits/spend", headers={"Tally-User-Id": user},
                           json={"amount": 5, "reason": "api", "idempotency_key": uuid.uuid4().hex})
        assert spent.status_code == 200, spent.text
    with httpx.Client(base_url=tally.url, timeout=30) as browser:
        page_token = tally.token(user)
        seen.append(page_token)
        assert browser.get("/signin/token", params={"token": page_token, "next": "/account"}).status_code == 303
        seen.append(browser.cookies["tally_session"])
        assert browser.get("/account").status_code == 200
    # Refusals, which are the usual place for a credential to be echoed into a log line.
    forged = token.rsplit(".", 1)[0] + ".forgedsignature"
    seen.append(forged)
    assert httpx.get(tally.url + "/v1/credits", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    wrong_key = tally.api_key + "-wrong"
    seen.append(wrong_key)
    assert httpx.get(tally.url + "/v1/credits", headers={"Authorization": f"Bearer {wrong_key}",
                                                         "Tally-User-Id": user}).status_code == 401
    body = json.dumps(make_event()).encode()
    bad_signature = sign(body, "whsec_wrong_" + "w" * 24)
    assert httpx.post(tally.url + "/v1/webhooks/stripe", content=body,
                      headers={"Stripe-Signature": bad_signature}).status_code == 400
    good_event = make_event()
    good_body = json.dumps(good_event).encode()
    assert httpx.post(tally.url + "/v1/webhooks/stripe", content=good_body,
                      headers={"Stripe-Signature": sign(good_body, tally.webhook_secret)}).status_code == 200
    poll(lambda: sql_at(tally.database_url, "SELECT status FROM webhook_events WHERE id = %s AND status <> 'pending'",
                        good_event["id"]), timeout=30, every=0.05, what="the worker to finish the last event")
    return seen


def emitted_lines(text: str) -> list[str]:
    """Lines of captured output, without the sandbox's own log lines."""
    kept = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if not str(record.get("logger", "")).startswith(SANDBOX_LOGGERS):
            kept.append(line)
    return kept


def tallys_lines(records: list[logging.LogRecord]) -> list[str]:
    """Tally's own records, as its JSON handler renders them. The test's HTTP client (a browser, in
    production) logs in the main thread — its debug lines show the URLs and cookies it was given, which
    are not Tally's logs; the sandbox logs in its own thread."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "tally-json")
    main = threading.main_thread().ident
    return [handler.format(r) for r in records
            if r.thread != main and r.threadName != "stripe-sandbox" and not r.name.startswith(SANDBOX_LOGGERS)]


def found(secrets: dict[str, str], text: str) -> list[str]:
    leaks = [name for name, value in secrets.items() if value and value in text]
    leaks += ["a card number" for pattern in CARD_PATTERNS if pattern.search(text)]
    return leaks + (["the CVC"] if CVC_PATTERN.search(text) else [])


def test_no_secret_or_card_data_in_the_logs(own_database_url: str, capfd: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture, restore_logging: None) -> None:
    caplog.set_level(logging.DEBUG)
    with TallyServer(own_database_url, TALLY_LOG_LEVEL="DEBUG", TALLY_LOG_FORMAT="json") as tally:
        handled = full_run(tally)
        configured = {"STRIPE_SECRET_KEY": SANDBOX_KEY, "the webhook secret": tally.webhook_secret,
                      "TALLY_JWT_SECRET": tally.settings.jwt_secret, "TALLY_API_KEY": tally.api_key}
        credentials = {f"credential #{i} of the run": value for i, value in enumerate(handled)}
        tally_log = tallys_lines(caplog.records)
    out, err = capfd.readouterr()
    emitted = emitted_lines(out + err)
    assert len(tally_log) > 100 and len(emitted) > 100, "the run logged almost nothing: capture is broken"
    # Everything written: no configured secret and no card data, whoever wrote it.
    assert found(configured, "\n".join(emitted)) == []
    # Tally's own lines: not even the tokens, cookies and client secrets it handled during the run.
    assert found({**configured, **credentials}, "\n".join(tally_log)) == []
