"""Bearer JWTs over HTTP: the HS256 secret and a JWKS (RS256, ES256) served by a tiny local HTTP server.
Every forged, stale or incomplete token answers 401 ``unauthenticated`` and reveals nothing; a good one
answers 200, so the refusals are not an accident of a broken setup."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.tally_harness import TallyServer

PROBE = "/v1/credits"  # any user route: answers the signed-in user's balance
AUDIENCE = "tally-security-tests"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(sub: str | None = "user-jwt", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {"iat": now, "exp": now + 600, **extra}
    if sub is not None:
        body["sub"] = sub
    return body


def status_of(server: TallyServer, token: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(server.url + PROBE, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return response.status_code, response.json()


def assert_refused(server: TallyServer, token: str, message_part: str | None = None) -> None:
    status, body = status_of(server, token)
    assert status == 401, body
    assert body["error"]["type"] == "unauthenticated"
    if message_part:
        assert message_part in body["error"]["message"]


# -- HS256 (TALLY_JWT_SECRET) ---------------------------------------------------------------------------
def hs(tally: Any, payload: dict[str, Any], *, secret: str | None = None, algorithm: str = "HS256",
       headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, secret or tally.settings.jwt_secret, algorithm=algorithm, headers=headers)


def test_a_good_hs256_token_is_accepted(tally: Any) -> None:
    status, body = status_of(tally, hs(tally, claims()))
    assert status == 200 and body["balance"] == 0


def test_a_verified_token_stops_working_when_it_expires() -> None:
    """Verified tokens are remembered (``TokenVerifier`` checks a signature once per token), but only until
    their expiry plus the leeway: after that the same token is refused as expired."""
    import asyncio

    from tally.auth.service import LEEWAY_SECONDS, TokenVerifier
    from tally.config import Settings
    from tally.errors import Unauthenticated

    verifier = TokenVerifier(Settings(TALLY_JWT_SECRET="s" * 48, STRIPE_SECRET_KEY="sk_test_cache"))
    token = jwt.encode(claims(exp=int(time.time()) - LEEWAY_SECONDS + 1), "s" * 48, algorithm="HS256")
    assert asyncio.run(verifier.verify(token))["sub"] == "user-jwt"  # within the leeway: accepted, remembered
    time.sleep(1.5)
    with pytest.raises(Unauthenticated, match="expired"):
        asyncio.run(verifier.verify(token))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(tally: Any, alg: str) -> None:
    unsigned = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims())}."
    assert_refused(tally, unsigned)
    # ... also with the valid HS256 signature pasted on (a verifier that skips "none" must still refuse).
    good_signature = hs(tally, claims()).rsplit(".", 1)[1]
    assert_refused(tally, f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims())}.{good_signature}")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the server's 48-byte secret
@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused_even_with_the_right_secret(tally: Any, alg: str) -> None:
    assert_refused(tally, hs(tally, claims(), algorithm=alg), f"'{alg}' are not accepted")


def test_rs256_is_refused_when_no_jwks_is_configured(tally: Any) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_refused(tally, jwt.encode(claims(), key, algorithm="RS256"), "'RS256' are not accepted")


def test_a_token_signed_with_another_secret_is_refused(tally: Any) -> None:
    assert_refused(tally, hs(tally, claims(), secret="another-secret-of-the-same-length-" + "y" * 16))


def test_a_tampered_payload_is_refused(tally: Any) -> None:
    header, _, signature = hs(tally, claims("user-honest")).split(".")
    assert_refused(tally, f"{header}.{b64(claims('user-victim'))}.{signature}")


def test_expired_tokens_are_refused_beyond_the_leeway(tally: Any) -> None:
    now = int(time.time())
    assert_refused(tally, hs(tally, claims(exp=now - 120, iat=now - 720)), "expired")


def test_not_yet_valid_tokens_are_refused(tally: Any) -> None:
    now = int(time.time())
    assert_refused(tally, hs(tally, claims(nbf=now + 600)), "not valid yet")
    assert_refused(tally, hs(tally, claims(iat=now + 600)))  # issued in the future


# The claims are made when the test runs, not at collection: a long suite would otherwise reach these tests
# with tokens that have expired meanwhile, refused for that instead of for their subject.
@pytest.mark.parametrize("payload, message", [
    (lambda: claims(sub=None), "'sub'"),
    (lambda: claims(sub=""), "sub"),
    (lambda: claims(sub=42), "Subject must be a string"),  # type: ignore[arg-type]
    (lambda: claims(sub="u" * 256), "sub"),
    (lambda: {"sub": "user-no-exp", "iat": int(time.time())}, "'exp'"),
])
def test_tokens_without_a_usable_sub_or_exp_are_refused(tally: Any, payload: Any, message: str) -> None:
    assert_refused(tally, hs(tally, payload()), message)


@pytest.mark.parametrize("token", ["Bearer", "abc", "a.b.c", "e30.e30.", "e30." * 3])
def test_garbage_is_refused(tally: Any, token: str) -> None:
    response = httpx.get(tally.url + PROBE, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["type"] == "unauthenticated"


def test_a_near_miss_of_the_api_key_is_refused(tally: Any) -> None:
    for wrong in (tally.api_key + "x", tally.api_key[:-1], tally.api_key.upper()):
        response = httpx.get(tally.url + PROBE, headers={"Authorization": f"Bearer {wrong}",
                                                         "Tally-User-Id": "user-x"}, timeout=30)
        assert response.status_code == 401 and response.json()["error"]["type"] == "unauthenticated"


# -- JWKS (TALLY_JWKS_URL): RS256 and ES256 ---------------------------------------------------------------
class Jwks:
    """A JWKS endpoint on a free port, as an identity provider publishes one."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        keys = [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())), "kid": "rsa-1",
                 "use": "sig", "alg": "RS256"},
                {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())), "kid": "ec-1",
                 "use": "sig", "alg": "ES256"}]
        body = json.dumps({"keys": keys}).encode()
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — http.server's naming
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, payload: dict[str, Any], *, kind: str = "rsa", kid: str | None = None,
              key: Any = None, headers: dict[str, Any] | None = None) -> str:
        alg = "RS256" if kind == "rsa" else "ES256"
        signing = key or (self.rsa if kind == "rsa" else self.ec)
        return jwt.encode(payload, signing, algorithm=alg,
                          headers={"kid": kid or f"{kind}-1", **(headers or {})})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.close()


@pytest.fixture(scope="module")
def idp_tally(database_url: str, jwks: Jwks) -> Iterator[TallyServer]:
    with TallyServer(database_url, run_worker=False, TALLY_JWKS_URL=jwks.url, TALLY_JWT_AUDIENCE=AUDIENCE) as server:
        yield server


def aud(**extra: Any) -> dict[str, Any]:
    return claims(f"idp-{uuid.uuid4().hex[:8]}", aud=AUDIENCE, **extra)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_jwks_tokens_are_accepted(idp_tally: TallyServer, jwks: Jwks, kind: str) -> None:
    status, body = status_of(idp_tally, jwks.token(aud(), kind=kind))
    assert status == 200 and body["balance"] == 0


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_jwks_tokens_signed_by_another_key_with_a_known_kid_are_refused(idp_tally: TallyServer, jwks: Jwks,
                                                                       kind: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
        else ec.generate_private_key(ec.SECP256R1())
    assert_refused(idp_tally, jwks.token(aud(), kind=kind, key=other))


def test_an_unknown_kid_is_refused(idp_tally: TallyServer, jwks: Jwks) -> None:
    assert_refused(idp_tally, jwks.token(aud(), kid="rotated-away"))


def test_a_jku_header_pointing_at_the_attackers_keys_is_ignored(idp_tally: TallyServer, jwks: Jwks) -> None:
    attacker = Jwks()  # publishes its own key under the same kid
    try:
        forged = attacker.token(aud(), headers={"jku": attacker.url})
        assert_refused(idp_tally, forged)
        assert attacker.requests == 0  # Tally never fetched the attacker's JWKS
    finally:
        attacker.close()


def test_hs256_signed_with_the_public_key_is_refused(idp_tally: TallyServer, jwks: Jwks) -> None:
    """Algorithm confusion: the RSA public key (public knowledge) used as an HMAC secret."""
    pem = jwks.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    payload = b64(aud())
    signature = base64.urlsafe_b64encode(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert_refused(idp_tally, f"{header}.{payload}.{signature.rstrip(b'=').decode()}")


def test_jwks_expiry_not_before_audience_and_sub_are_checked(idp_tally: TallyServer, jwks: Jwks) -> None:
    now = int(time.time())
    assert_refused(idp_tally, jwks.token(aud(exp=now - 120, iat=now - 720)), "expired")
    assert_refused(idp_tally, jwks.token(aud(nbf=now + 600)), "not valid yet")
    assert_refused(idp_tally, jwks.token(claims("idp-x", aud="another-app")))
    assert_refused(idp_tally, jwks.token(claims("idp-x")))  # no audience at all
    assert_refused(idp_tally, jwks.token(claims(None, aud=AUDIENCE)), "'sub'")
    assert_refused(idp_tally, jwks.token(aud(), kind="ec", kid="rsa-1"))  # an EC signature under the RSA key


def test_alg_none_is_refused_with_a_jwks_too(idp_tally: TallyServer) -> None:
    assert_refused(idp_tally, f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(aud())}.")
