"""Webhook signatures, over HTTP on the real receiver (``POST /v1/webhooks/stripe``) and on ``verify`` for the
rotation cases the server's single test secret cannot show. Signatures are computed the way Stripe
documents them (tests/webhook_signing.py), not with the SDK the receiver uses. A refused delivery is 400
``invalid_webhook`` and stores nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tally.runtime import WEBHOOK_PATH
from tally.webhooks.signature import InvalidWebhook, WebhookNotConfigured, verify
from tests.integration.purchase_flow import sql
from tests.webhook_signing import make_event, sign, signature

OTHER_SECRET = "whsec_other_" + "z" * 24


def post(tally: Any, body: bytes, header: str | None, path: str = WEBHOOK_PATH) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return httpx.post(tally.url + path, content=body, headers=headers, timeout=30)


def stored(tally: Any, event_id: str) -> int:
    return int(sql(tally, "SELECT count(*) FROM webhook_events WHERE id = %s", event_id)[0][0])


def refused(tally: Any, event: dict[str, Any], body: bytes, header: str | None, message: str | None = None) -> None:
    response = post(tally, body, header)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_webhook"
    if message:
        assert message in error["message"]
    assert stored(tally, event["id"]) == 0


def test_a_correctly_signed_event_is_stored_once(tally: Any) -> None:
    event = make_event()
    body = orjson.dumps(event)
    assert post(tally, body, sign(body, tally.webhook_secret)).status_code == 200
    assert stored(tally, event["id"]) == 1


def test_a_tampered_body_is_refused(tally: Any) -> None:
    event = make_event()
    body = orjson.dumps(event)
    header = sign(body, tally.webhook_secret)
    for tampered in (body.replace(b'"livemode":false', b'"livemode":false '),  # one space more
                     body.replace(b"tally.test.noop", b"tally.test.nooq"),
                     body + b"\n"):
        assert tampered != body
        refused(tally, event, tampered, header, "No valid signature")


def test_a_wrong_secret_is_refused(tally: Any) -> None:
    event = make_event()
    body = orjson.dumps(event)
    refused(tally, event, body, sign(body, OTHER_SECRET), "No valid signature")
    refused(tally, event, body, sign(body, ""), "No valid signature")


def test_a_stale_timestamp_is_refused(tally: Any) -> None:
    event = make_event()
    body = orjson.dumps(event)
    refused(tally, event, body, sign(body, tally.webhook_secret, timestamp=int(time.time()) - 301), "tolerance")
    refused(tally, event, body, sign(body, tally.webhook_secret, timestamp=0), "tolerance")


def test_a_replay_outside_the_tolerance_is_refused_and_inside_it_is_not_processed_twice(tally: Any) -> None:
    """A delivery captured on the wire: replayed at once it is a duplicate (answered 200, stored once); the
    same bytes replayed after the 5-minute tolerance are refused. The captured header is re-created with its
    original timestamp, which is what a replay after that long amounts to."""
    event = make_event()
    body = orjson.dumps(event)
    captured = sign(body, tally.webhook_secret)
    assert post(tally, body, captured).status_code == 200
    assert post(tally, body, captured).status_code == 200
    assert stored(tally, event["id"]) == 1
    old = make_event()
    old_body = orjson.dumps(old)
    sent_at = int(time.time()) - 6 * 60
    replayed = f"t={sent_at},v1={signature(old_body, tally.webhook_secret, sent_at)}"
    refused(tally, old, old_body, replayed, "tolerance")


def test_a_moved_timestamp_breaks_the_signature(tally: Any) -> None:
    """Refreshing a captured header's t= to pass the tolerance check invalidates its v1."""
    event = make_event()
    body = orjson.dumps(event)
    sent_at = int(time.time()) - 6 * 60
    v1 = signature(body, tally.webhook_secret, sent_at)
    refused(tally, event, body, f"t={int(time.time())},v1={v1}", "No valid signature")


@pytest.mark.parametrize("header", [None, "", "garbage", "t=,v1=", "v1=abc", "t=123", "t=abc,v1=def",
                                    "t=1,v1=" + "0" * 64])
def test_missing_or_malformed_headers_are_refused(tally: Any, header: str | None) -> None:
    event = make_event()
    refused(tally, event, orjson.dumps(event), header)


def test_only_v1_signatures_count(tally: Any) -> None:
    """A valid HMAC under another scheme name (v0, Stripe's old test-mode scheme) is not accepted."""
    event = make_event()
    body = orjson.dumps(event)
    t = int(time.time())
    refused(tally, event, body, f"t={t},v0={signature(body, tally.webhook_secret, t)}")


def test_during_rotation_a_header_with_two_v1_signatures_is_accepted(tally: Any) -> None:
    """Stripe signs with the old and the new secret while a secret is rolled; the server knows one of them."""
    for secrets in ((OTHER_SECRET, tally.webhook_secret), (tally.webhook_secret, OTHER_SECRET)):
        event = make_event()
        body = orjson.dumps(event)
        assert post(tally, body, sign(body, *secrets)).status_code == 200
        assert stored(tally, event["id"]) == 1
    event = make_event()
    body = orjson.dumps(event)
    refused(tally, event, body, sign(body, OTHER_SECRET, "whsec_third_" + "q" * 24))


def test_the_compatibility_webhook_paths_check_the_same_signature(tally: Any) -> None:
    for path in ("/api/payment/webhook", "/api/stripe/webhook"):
        event = make_event()
        body = orjson.dumps(event)
        bad = post(tally, body, sign(body, OTHER_SECRET), path)
        assert bad.status_code == 400 and stored(tally, event["id"]) == 0
        assert post(tally, body, sign(body, tally.webhook_secret), path).status_code == 200


# -- verify() with two configured secrets (the server side of a rotation) ---------------------------------
OLD, NEW = "whsec_old_" + "a" * 24, "whsec_new_" + "b" * 24


def test_verify_accepts_either_configured_secret_while_rotating() -> None:
    body = orjson.dumps(make_event())
    for signed_with in ((OLD,), (NEW,), (OLD, NEW), (NEW, OLD)):
        assert verify(body, sign(body, *signed_with), [OLD, NEW]) == body.decode()
    with pytest.raises(InvalidWebhook, match="No valid signature"):
        verify(body, sign(body, OTHER_SECRET), [OLD, NEW])
    for first, second in ((OLD, NEW), (NEW, OLD)):  # stale under either secret, said as such in any order
        with pytest.raises(InvalidWebhook, match="tolerance"):
            verify(body, sign(body, OLD, timestamp=int(time.time()) - 600), [first, second])
    # After the rotation the old secret is gone: its signature alone no longer passes.
    with pytest.raises(InvalidWebhook):
        verify(body, sign(body, OLD), [NEW])


@pytest.mark.parametrize("secrets", [[], [""], ["  "]])
def test_verify_refuses_everything_without_a_secret(secrets: list[str]) -> None:
    """An empty key can be forged: nothing is accepted, even a body 'signed' with the empty string."""
    body = orjson.dumps(make_event())
    with pytest.raises(WebhookNotConfigured):
        verify(body, sign(body, ""), secrets)
