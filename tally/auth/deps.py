"""FastAPI dependencies: ``CurrentUser`` for user routes, ``AdminUser`` for operator routes (routes import them
from ``tally.deps`` with the others)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.applications import Starlette

from ..errors import Forbidden, Unauthenticated
from ..observability.logging import bind
from .service import Principal, TokenVerifier, api_key_principal, principal_from_claims

USER_HEADER = "Tally-User-Id"


def token_verifier_of(app: Starlette) -> TokenVerifier:
    """The app's verifier (``tally.deps.install_state`` made it; read here, where every caller is checked)."""
    verifier: TokenVerifier = app.state.token_verifier
    return verifier


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(request: Request, user_id: str | None = None, email: str | None = None) -> Principal:
    """The caller, from a JWT or from the API key plus a user id (header, or ``user_id`` given by a route)."""
    verifier = token_verifier_of(request.app)
    # Bearer only: a cookie would let any site make a signed-in user's browser call the API (CSRF).
    # The server-rendered pages authenticate by cookie through their own CSRF-protected dependency.
    token = bearer_token(request)
    if not token:
        raise Unauthenticated("Sign in first: send 'Authorization: Bearer <token>'.",
                              headers={"WWW-Authenticate": "Bearer"})
    if verifier.is_api_key(token):
        principal = api_key_principal(user_id or request.headers.get(USER_HEADER), email)
    else:
        principal = principal_from_claims(await verifier.verify(token))
    bind(user_id=principal.user_id)  # on every later log line of this request
    return principal


async def current_user(request: Request) -> Principal:
    return await authenticate(request)


async def admin_user(request: Request) -> Principal:
    principal = await authenticate(request, user_id="admin")
    if not principal.is_admin:
        raise Forbidden("This needs the API key or an admin token.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
