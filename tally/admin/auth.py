"""Who may open ``/admin``: the API key or a JWT whose role is ``admin`` (``role`` or ``app_metadata.role``),
either as a bearer header (scripts, curl) or — for a browser, which cannot send one — through the admin cookie
that ``/admin/login`` sets. A pages user signed in with an admin JWT (``/signin/token``) is let in too.

The admin cookie, ``tally_admin``, is signed with HMAC-SHA256 (a key derived from the pages' session key, with
its own label), ``HttpOnly``, ``SameSite=Strict``, limited to ``/admin`` and ``Secure`` on https. It never holds
the API key: for a key sign-in it holds an HMAC of the key, so rotating ``TALLY_API_KEY`` signs every such
cookie out; for a JWT sign-in it holds the token, verified again on every request. Each cookie carries a CSRF
nonce that the dashboard's forms (replay, sign out) must send back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from ..auth.deps import admin_user, bearer_token, token_verifier_of
from ..auth.service import Principal, principal_from_claims
from ..deps import settings_of
from ..errors import Unauthenticated
from ..pages.session import codec, load_session

COOKIE = "tally_admin"
COOKIE_PATH = "/admin"
MAX_AGE = 8 * 3600


class AdminSignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class AdminCsrfRefused(Exception):
    pass


@dataclass(frozen=True)
class Admin:
    principal: Principal
    via: str  # bearer | cookie | page_session
    csrf: str | None  # the nonce forms must carry (None with a bearer header: no ambient credential)

    def check_csrf(self, submitted: str | None) -> None:
        if self.csrf is None:
            return
        if not submitted or not hmac.compare_digest(submitted.encode(), self.csrf.encode()):
            raise AdminCsrfRefused


def _key(request: Request) -> bytes:
    return codec(request).derived_key(b"tally-admin-session-v1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _api_key_mark(request: Request, api_key: str) -> str:
    return _b64(hmac.new(_key(request), b"api-key:" + api_key.encode(), hashlib.sha256).digest())


def _sign(request: Request, payload: str) -> str:
    return _b64(hmac.new(_key(request), payload.encode(), hashlib.sha256).digest())


def _read_cookie(request: Request) -> dict[str, object] | None:
    raw = request.cookies.get(COOKIE)
    if not raw or "." not in raw:
        return None
    payload, _, signature = raw.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _sign(request, payload).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or data["exp"] < time.time():
        return None
    return data


def write_cookie(request: Request, response: Response, *, api_key: str | None = None, token: str | None = None,
                 expires_at: int | None = None) -> None:
    exp = int(time.time()) + MAX_AGE
    if expires_at is not None:
        exp = min(exp, expires_at)
    data = {"kind": "api_key" if api_key else "jwt", "exp": exp, "csrf": secrets.token_urlsafe(24),
            "mark": _api_key_mark(request, api_key) if api_key else None, "jwt": token}
    payload = _b64(json.dumps(data, separators=(",", ":")).encode())
    secure = settings_of(request.app).public_url.lower().startswith("https://")
    response.set_cookie(COOKIE, f"{payload}.{_sign(request, payload)}", max_age=max(0, exp - int(time.time())),
                        path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


async def admin_from_token(request: Request, token: str) -> Principal | None:
    """The admin a pasted key or token stands for, or None (not the API key, not a valid admin JWT)."""
    verifier = token_verifier_of(request.app)
    if verifier.is_api_key(token):
        return Principal("admin", via_api_key=True, is_admin=True)
    try:
        principal = principal_from_claims(await verifier.verify(token))
    except Unauthenticated:
        return None
    return principal if principal.is_admin else None


async def _from_cookie(request: Request) -> Admin | None:
    data = _read_cookie(request)
    if data is None or not isinstance(data.get("csrf"), str):
        return None
    settings = settings_of(request.app)
    if data.get("kind") == "api_key":
        mark = data.get("mark")
        if settings.api_key and isinstance(mark, str) and \
                hmac.compare_digest(mark.encode(), _api_key_mark(request, settings.api_key).encode()):
            return Admin(Principal("admin", via_api_key=True, is_admin=True), "cookie", str(data["csrf"]))
        return None
    token = data.get("jwt")
    principal = await admin_from_token(request, token) if isinstance(token, str) else None
    return Admin(principal, "cookie", str(data["csrf"])) if principal else None


async def _from_page_session(request: Request) -> Admin | None:
    session = load_session(request)
    if not session.jwt:
        return None
    try:
        principal = principal_from_claims(await token_verifier_of(request.app).verify(session.jwt))
    except Unauthenticated:
        return None
    return Admin(principal, "page_session", session.csrf) if principal.is_admin else None


async def require_admin(request: Request) -> Admin:
    """A bearer header decides alone (401/403 as the API answers); else the admin cookie, else an admin
    signed in to the pages; else the browser is sent to ``/admin/login``."""
    if bearer_token(request):
        return Admin(await admin_user(request), "bearer", None)
    found = await _from_cookie(request) or await _from_page_session(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise AdminSignInRequired(target if request.method == "GET" else "/admin")
    return found
