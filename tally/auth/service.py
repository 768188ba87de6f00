"""Who is calling: the app's user from a bearer JWT (HS256 secret, or RS256/ES256 keys from a JWKS URL,
as Supabase, Auth0 and Clerk issue them), or a server holding ``TALLY_API_KEY`` acting for a user id."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

import jwt

from ..config import Settings
from ..errors import InvalidRequest, Unauthenticated

ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"]
MAX_USER_ID = 255
LEEWAY_SECONDS = 30
# Tokens already verified, kept until they expire: an app sends the same token on every request, and the
# rate limiter and the route both need its claims. Bounded; the oldest entry goes first.
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str | None = None
    via_api_key: bool = False
    is_admin: bool = False


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._verified: dict[str, tuple[float, dict[str, object]]] = {}  # token -> (expiry, claims)
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=3600)

    @property
    def hs_secret(self) -> str | None:
        if self.settings.jwt_secret:
            return self.settings.jwt_secret
        return self.settings.dev_jwt_secret if self.settings.sandbox_mode else None

    async def verify(self, token: str) -> dict[str, object]:
        """The token's claims once its signature, expiry, not-before and audience check out. A token that
        passed is remembered until it expires (the same bytes verify the same way until then), so the
        signature is checked once per token, not once per request."""
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() <= cached[0]:
                return cached[1]
            del self._verified[token]
        claims = await self._verify(token)
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (exp + LEEWAY_SECONDS, claims)
        return claims

    async def _verify(self, token: str) -> dict[str, object]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is not a valid JWT.") from None
        alg = header.get("alg")
        options = {"require": ["sub", "exp"], "verify_aud": bool(self.settings.jwt_audience)}
        try:
            if alg == "HS256" and self.hs_secret:
                return jwt.decode(token, self.hs_secret, algorithms=["HS256"], options=options,
                                  audience=self.settings.jwt_audience, leeway=LEEWAY_SECONDS)
            if alg in ASYMMETRIC and self._jwks is not None:
                # PyJWKClient fetches synchronously; keep it off the event loop.
                key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                return jwt.decode(token, key.key, algorithms=ASYMMETRIC, options=options,
                                  audience=self.settings.jwt_audience, leeway=LEEWAY_SECONDS)
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The token is not valid yet.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"The token lacks the '{exc.claim}' claim.") from None
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise Unauthenticated(f"The token was refused: {exc}.") from None
        except (TypeError, ValueError):
            # The header's alg does not fit the key its kid names (e.g. ES256 under an RSA key): PyJWT raises
            # these from key preparation rather than a PyJWTError. A refusal, never a 500.
            raise Unauthenticated(f"The token's '{alg}' signature does not fit its key.") from None
        raise Unauthenticated(f"Tokens signed with '{alg}' are not accepted here.")

    def is_api_key(self, token: str) -> bool:
        key = self.settings.api_key
        if not key:
            return False
        return hmac.compare_digest(token.encode(), key.encode())


def principal_from_claims(claims: dict[str, object]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_USER_ID:
        raise Unauthenticated("The token's 'sub' claim must be a non-empty user id.")
    email = claims.get("email")
    metadata = claims.get("app_metadata")
    role = claims.get("role") or (metadata.get("role") if isinstance(metadata, dict) else None)
    return Principal(sub, email if isinstance(email, str) else None, is_admin=role == "admin")


def api_key_principal(user_id: str | None, email: str | None = None) -> Principal:
    if not user_id:
        raise InvalidRequest("A request made with the API key must name the user (Tally-User-Id header).",
                             param="user_id")
    if len(user_id) > MAX_USER_ID:
        raise InvalidRequest("The user id is too long.", param="user_id")
    return Principal(user_id, email, via_api_key=True, is_admin=True)


def issue_dev_token(settings: Settings, user_id: str, email: str | None, ttl: int = 7 * 86400) -> str:
    """A demo login token for sandbox mode (signed with the configured or the dev HS256 secret)."""
    now = int(time.time())
    claims = {"sub": user_id, "email": email, "iat": now, "exp": now + ttl, "iss": "tally-sandbox"}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.dev_jwt_secret, algorithm="HS256")
