"""The pages' cookie session and CSRF protection, written here rather than taken from asgi-csrf.

One cookie, ``tally_session``, holds ``{"jwt": <the user's token or null>, "csrf": <random nonce>}``,
signed with HMAC-SHA256 so it cannot be edited or forged. It is ``HttpOnly`` (scripts never see the token),
``SameSite=Lax`` (other sites' POSTs arrive without it) and ``Secure`` when the public URL is https.

CSRF is a synchronizer token kept client-side: every form carries the session's nonce in a hidden
``csrf_token`` field, and a POST is accepted only when the field equals the nonce inside the signed cookie.
Another site can neither read the cookie nor the page, so it cannot know the nonce. The nonce is renewed
on sign-in and sign-out, so a value learned before signing in is useless after.

Why not asgi-csrf: it is a second cookie and a middleware over the whole app (the JSON API and the
webhook route would need exempting); the pages need ~40 lines that are easy to read and test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from starlette.responses import Response

from ..config import Settings
from ..deps import settings_of

COOKIE = "tally_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_AGE = 7 * 86400  # never longer than the token inside; see ``PageSession.max_age``


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token (rendered as a 403 page)."""


def session_key(settings: Settings) -> bytes:
    """The HMAC key for session cookies. Derived from ``TALLY_JWT_SECRET`` when set, since every instance
    of a deployment shares it (domain-separated, so a cookie signature is never a JWT signature); else a
    random key kept in the data directory (one machine, e.g. ``tally serve`` on the embedded defaults)."""
    if settings.jwt_secret:
        return hmac.new(settings.jwt_secret.encode(), b"tally-pages-session-v1", hashlib.sha256).digest()
    path = Path(settings.data_dir) / "pages_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PageSession:
    jwt: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    expires_at: int | None = None  # the token's ``exp``: the cookie lives no longer than the token
    dirty: bool = False  # must be written back on the response

    def sign_in(self, token: str, expires_at: int | None) -> None:
        self.jwt, self.expires_at = token, expires_at
        self.csrf = secrets.token_urlsafe(24)  # a nonce seen while signed out does not carry over
        self.dirty = True

    def sign_out(self) -> None:
        self.jwt, self.expires_at = None, None
        self.csrf = secrets.token_urlsafe(24)
        self.dirty = True

    def check_csrf(self, submitted: str | None) -> None:
        if not submitted or not hmac.compare_digest(submitted.encode(), self.csrf.encode()):
            raise CsrfRefused

    @property
    def max_age(self) -> int:
        if self.expires_at is None:
            return MAX_AGE
        return max(0, min(MAX_AGE, self.expires_at - int(time.time())))


class SessionCodec:
    """Cookie text ⇄ ``PageSession``; anything unsigned, tampered or malformed reads as a new session."""

    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._key = key
        self.secure = secure

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def derived_key(self, label: bytes) -> bytes:
        """A key of its own for another cookie (``label`` keeps its signatures apart from this one's)."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def dumps(self, session: PageSession) -> str:
        payload = _b64(json.dumps({"jwt": session.jwt, "csrf": session.csrf, "exp": session.expires_at},
                                  separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, cookie: str | None) -> PageSession:
        if not cookie or "." not in cookie:
            return PageSession(dirty=True)
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return PageSession(dirty=True)
        try:
            data = json.loads(_unb64(payload))
            jwt, csrf, exp = data.get("jwt"), data["csrf"], data.get("exp")
        except (ValueError, KeyError, TypeError, AttributeError):
            return PageSession(dirty=True)
        if not isinstance(csrf, str) or not csrf or (jwt is not None and not isinstance(jwt, str)):
            return PageSession(dirty=True)
        return PageSession(jwt=jwt, csrf=csrf, expires_at=exp if isinstance(exp, int) else None)

    def write(self, response: Response, session: PageSession) -> None:
        response.set_cookie(COOKIE, self.dumps(session), max_age=session.max_age, path="/", httponly=True,
                            samesite="lax", secure=self.secure)


def codec(request: Request) -> SessionCodec:
    """The app's codec, built on first use rather than with the app: without TALLY_JWT_SECRET its key is read
    from (or first written to) the data folder, which making an app must not touch."""
    state = request.app.state
    found: SessionCodec | None = getattr(state, "page_session_codec", None)
    if found is None:
        settings = settings_of(request.app)
        found = state.page_session_codec = SessionCodec(
            session_key(settings), secure=settings.public_url.lower().startswith("https://"))
    return found


def load_session(request: Request) -> PageSession:
    """This request's session, read once and kept on ``request.state`` for the response to write back."""
    found = getattr(request.state, "page_session", None)
    if found is None:
        found = request.state.page_session = codec(request).loads(request.cookies.get(COOKIE))
    return found
