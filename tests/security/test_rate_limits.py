"""Rate limits on a server with low limits set explicitly. Client addresses are given through
``X-Forwarded-For``, which uvicorn trusts from 127.0.0.1 (its ``--forwarded-allow-ips`` default), exactly
as behind a reverse proxy; each test uses its own addresses and users, so the tests do not share buckets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tally.config import Settings
from tally.runtime import WEBHOOK_PATH
from tally.security.audit import build_app
from tally.security.ratelimit import RateLimitMiddleware
from tests.integration.purchase_flow import STRIPE_HTTPX_WARNING, new_user
from tests.tally_harness import TallyServer
from tests.webhook_signing import make_event, signed

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)

LIMITS = {"TALLY_RATE_LIMIT_USER": "3/minute", "TALLY_RATE_LIMIT_IP": "8/minute",
          "TALLY_RATE_LIMIT_LOGIN": "2/minute", "TALLY_RATE_LIMIT_API_KEY": "5/minute"}


@pytest.fixture(scope="module")
def limited(database_url: str) -> Iterator[TallyServer]:
    with TallyServer(database_url, run_worker=False, **LIMITS) as server:
        yield server


def new_ip() -> str:
    return "10.%d.%d.%d" % tuple(uuid.uuid4().bytes[:3])


def spend(server: TallyServer, *, user: str | None, ip: str, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {server.token(user)}"} if user else {}
    return httpx.post(server.url + "/v1/credits/spend", timeout=30,
                      json={"amount": 1, "reason": "probe", "idempotency_key": uuid.uuid4().hex},
                      headers={"X-Forwarded-For": ip, **auth, **headers})


def assert_limited(response: httpx.Response, what: str) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    error = response.json()["error"]
    assert error["type"] == "rate_limited" and error["param"] is None
    assert what in error["message"] and f"Retry in {retry_after} seconds" in error["message"]


def test_each_user_has_a_limit_wherever_they_call_from(limited: TallyServer) -> None:
    user, ip = new_user(), new_ip()
    for _ in range(3):
        assert spend(limited, user=user, ip=ip).status_code == 409  # insufficient credits: counted, served
    assert_limited(spend(limited, user=user, ip=ip), "requests for this user")
    assert_limited(spend(limited, user=user, ip=new_ip()), "requests for this user")  # another address
    assert spend(limited, user=new_user(), ip=ip).status_code == 409  # another user at the same address


def test_each_address_has_a_limit_whoever_calls(limited: TallyServer) -> None:
    ip = new_ip()
    for _ in range(8):
        assert spend(limited, user=new_user(), ip=ip).status_code == 409
    assert_limited(spend(limited, user=new_user(), ip=ip), "requests from this address")
    assert spend(limited, user=new_user(), ip=new_ip()).status_code == 409


def test_unauthenticated_and_forged_attempts_count_against_the_address(limited: TallyServer) -> None:
    ip = new_ip()
    for i in range(8):
        headers = {"Authorization": "Bearer forged.token.value"} if i % 2 else {}
        assert spend(limited, user=None, ip=ip, **headers).status_code == 401
    assert_limited(spend(limited, user=None, ip=ip), "requests from this address")
    assert_limited(spend(limited, user=new_user(), ip=ip), "requests from this address")


def test_reads_are_not_limited(limited: TallyServer) -> None:
    user, ip = new_user(), new_ip()
    for _ in range(4):
        spend(limited, user=user, ip=ip)
    with limited.client(user) as client:
        for _ in range(20):
            assert client.get("/v1/credits", headers={"X-Forwarded-For": ip}).status_code == 200


def test_login_has_a_tighter_limit_per_address(limited: TallyServer) -> None:
    ip = new_ip()
    for _ in range(2):
        response = httpx.post(limited.url + "/dev/login", json={"user_id": new_user()},
                              headers={"X-Forwarded-For": ip}, timeout=30)
        assert response.status_code == 200
    response = httpx.post(limited.url + "/dev/login", json={"user_id": new_user()},
                          headers={"X-Forwarded-For": ip}, timeout=30)
    assert_limited(response, "sign-ins from this address")


def test_login_has_a_limit_per_account_whatever_the_address(limited: TallyServer) -> None:
    """Guesses at one account spread over many addresses are limited too; the body reaches the route intact."""
    user = new_user()
    for form in (False, True):  # the JSON sign-in, then the pages' form (refused for its CSRF token, but counted)
        if form:
            response = httpx.post(limited.url + "/signin", data={"user_id": user},
                                  headers={"X-Forwarded-For": new_ip()}, timeout=30)
            assert response.status_code == 403
        else:
            response = httpx.post(limited.url + "/dev/login", json={"user_id": user},
                                  headers={"X-Forwarded-For": new_ip()}, timeout=30)
            assert response.status_code == 200 and response.json()["token"]
    response = httpx.post(limited.url + "/dev/login", json={"user_id": f"  {user} "},
                          headers={"X-Forwarded-For": new_ip()}, timeout=30)
    assert_limited(response, "sign-ins to this account")
    response = httpx.post(limited.url + "/dev/login", json={"user_id": new_user()},
                          headers={"X-Forwarded-For": new_ip()}, timeout=30)
    assert response.status_code == 200  # another account


def test_the_admin_login_counts_as_a_login(limited: TallyServer) -> None:
    """It takes the API key: guessing it is throttled like any sign-in; a browser gets a page."""
    ip = new_ip()
    browser = {"X-Forwarded-For": ip, "Accept": "text/html,application/xhtml+xml"}
    for _ in range(2):
        httpx.post(limited.url + "/admin/login", data={"key": "guess"}, headers=browser, timeout=30)
    page = httpx.post(limited.url + "/admin/login", data={"key": "guess"}, headers=browser, timeout=30)
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert int(page.headers["Retry-After"]) >= 1


def test_a_page_form_over_the_limit_gets_a_page(limited: TallyServer) -> None:
    ip = new_ip()
    with httpx.Client(base_url=limited.url, headers={"X-Forwarded-For": ip}, timeout=30) as browser:
        for _ in range(2):  # refused for the missing CSRF token, but counted as sign-in attempts
            assert browser.post("/signin", data={"user_id": "someone"}).status_code == 403
        page = browser.post("/signin", data={"user_id": "someone"})
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert "Too many attempts" in page.text and int(page.headers["Retry-After"]) >= 1
    assert "Content-Security-Policy" in page.headers


def test_the_compat_family_gets_its_success_flag(limited: TallyServer) -> None:
    user, ip = new_user(), new_ip()
    headers = {"Authorization": f"Bearer {limited.token(user)}", "X-Forwarded-For": ip}
    for _ in range(3):
        httpx.post(limited.url + "/api/business/credit-orders", json={"planId": "nope"}, headers=headers, timeout=30)
    response = httpx.post(limited.url + "/api/business/credit-orders", json={"planId": "nope"}, headers=headers,
                          timeout=30)
    assert response.status_code == 429 and response.json()["success"] is False
    assert_limited(response, "requests for this user")


def test_the_api_key_counts_per_named_user_and_in_its_own_bucket(limited: TallyServer) -> None:
    ip = new_ip()
    key = {"Authorization": f"Bearer {limited.api_key}"}
    user = new_user()
    for _ in range(3):
        assert spend(limited, user=None, ip=ip, **key, **{"Tally-User-Id": user}).status_code == 409
    assert_limited(spend(limited, user=None, ip=ip, **key, **{"Tally-User-Id": user}), "requests for this user")
    # Every user it acts for shares the API key's bucket (5/minute here) — not the address's.
    assert spend(limited, user=None, ip=ip, **key, **{"Tally-User-Id": new_user()}).status_code == 409
    assert_limited(spend(limited, user=None, ip=ip, **key, **{"Tally-User-Id": new_user()}),
                   "requests made with the API key")
    assert spend(limited, user=new_user(), ip=ip).status_code == 409  # a user's own call from that address


def test_stripe_webhooks_are_never_limited(limited: TallyServer) -> None:
    ip = new_ip()
    for _ in range(20):
        body, headers = signed(make_event(), limited.webhook_secret)
        response = httpx.post(limited.url + WEBHOOK_PATH, content=body, headers={**headers, "X-Forwarded-For": ip},
                              timeout=30)
        assert response.status_code == 200
    for path in ("/api/payment/webhook", "/api/stripe/webhook"):
        body, headers = signed(make_event(), limited.webhook_secret)
        assert httpx.post(limited.url + path, content=body, headers={**headers, "X-Forwarded-For": ip},
                          timeout=30).status_code == 200
    # ... while a bad delivery is refused by its signature, not by a limit.
    body = orjson.dumps(make_event())
    assert httpx.post(limited.url + WEBHOOK_PATH, content=body, headers={"X-Forwarded-For": ip},
                      timeout=30).status_code == 400


def test_limits_can_be_switched_off() -> None:
    def limiters(**env: str) -> int:
        app = build_app(Settings(**env))
        return sum(m.cls is RateLimitMiddleware for m in app.user_middleware)

    assert limiters() == 1
    assert limiters(TALLY_RATE_LIMITS="false") == 0


def test_bad_limit_strings_are_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="couldn't parse"):
        Settings(TALLY_RATE_LIMIT_USER="lots")


# -- Redis: several API nodes share the counts ------------------------------------------------------------
REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")
def test_two_api_nodes_share_limits_through_redis(database_url: str) -> None:
    limits = {**LIMITS, "TALLY_RATE_LIMIT_IP": "1000/minute", "TALLY_REDIS_URL": REDIS_URL}
    with TallyServer(database_url, run_worker=False, **limits) as one, \
            TallyServer(database_url, run_worker=False, **limits) as two:
        user, ip = new_user(), new_ip()
        assert spend(one, user=user, ip=ip).status_code == 409
        assert spend(two, user=user, ip=ip).status_code == 409
        assert spend(one, user=user, ip=ip).status_code == 409
        assert_limited(spend(two, user=user, ip=ip), "requests for this user")  # 4th across both nodes
        assert_limited(spend(one, user=user, ip=ip), "requests for this user")


def test_an_unreachable_redis_lets_requests_through(database_url: str) -> None:
    """A limiter outage must not stop payments: the request is served (and the failure logged)."""
    with TallyServer(database_url, run_worker=False, **LIMITS, TALLY_REDIS_URL="redis://127.0.0.1:1/0") as server:
        user = new_user()
        for _ in range(5):
            assert spend(server, user=user, ip=new_ip()).status_code == 409
