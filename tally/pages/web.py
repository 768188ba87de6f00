"""The plumbing every page shares: templates, the signed-in user from the session cookie, and ``PageRoute``,
which writes the session cookie and security headers on each page response and turns any error raised by a
page into an HTML page in plain words. The JSON API keeps its own JSON error handlers: this route class
is used by the pages' router only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from ..auth.deps import token_verifier_of
from ..auth.service import Principal, principal_from_claims
from ..deps import settings_of
from ..errors import (Forbidden, InvalidRequest, NotFound, PaymentFailed, TallyError, Unauthenticated,
                      UpstreamUnavailable)
from ..templating import templates
from .session import CsrfRefused, PageSession, codec, load_session

log = logging.getLogger("tally.pages")

SECURITY_HEADERS = {
    # No inline script or style anywhere in the pages, so 'self' is enough; no framing (clickjacking).
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # /signin/token?token=… must never leak to another site
    "X-Content-Type-Options": "nosniff",
}


class SignInRequired(Exception):
    """A page needs a signed-in user: redirect to the sign-in page, then back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """An error a page shows as such (status, heading, one sentence of advice)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths: ``next`` must never send a signed-in user to another site (open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def signin_url(next_path: str) -> str:
    return f"/signin?next={quote(next_path, safe='/')}"


# -- the user -------------------------------------------------------------------------------------
async def optional_user(request: Request) -> Principal | None:
    """The signed-in user, or None. A token that no longer verifies (expired, key rotated) signs out."""
    session = load_session(request)
    principal = None
    if session.jwt:
        try:
            principal = principal_from_claims(await token_verifier_of(request.app).verify(session.jwt))
        except Unauthenticated:
            session.sign_out()
    request.state.page_user = principal  # for the header of an error page
    return principal


async def required_user(request: Request) -> Principal:
    principal = await optional_user(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/pricing")
    return principal


MaybeUser = Annotated[Principal | None, Depends(optional_user)]
User = Annotated[Principal, Depends(required_user)]


async def _session(request: Request) -> PageSession:
    return load_session(request)  # async: FastAPI would run a plain function in a worker thread


Session = Annotated[PageSession, Depends(_session)]


async def csrf_protected(request: Request) -> None:
    """For every state-changing page route: the form's ``csrf_token`` (or the ``X-CSRF-Token`` header)
    must equal the nonce in the signed session cookie."""
    submitted = request.headers.get("x-csrf-token")
    if submitted is None:
        form = await request.form()
        value = form.get("csrf_token")
        submitted = value if isinstance(value, str) else None
    load_session(request).check_csrf(submitted)


# -- rendering ------------------------------------------------------------------------------------
def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           *, user: Principal | None = None) -> Response:
    settings = settings_of(request.app)
    session = load_session(request)
    base = {"settings": settings, "sandbox_mode": settings.sandbox_mode, "user": user,
            "csrf_token": session.csrf, "path": request.url.path}
    return templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status_code)


# Plain words for the errors a page can meet; never an exception's text from a library.
def _describe(exc: Exception) -> PageError:
    if isinstance(exc, PageError):
        return exc
    if isinstance(exc, CsrfRefused):
        return PageError(403, "This form has expired",
                         "For your security the form could not be accepted. Go back, reload the page and try again.")
    if isinstance(exc, PaymentFailed):
        return PageError(402, "Your payment was declined", f"{exc.message} Nothing was charged.")
    if isinstance(exc, UpstreamUnavailable):
        return PageError(503, "The payment service is not answering",
                         "We could not reach the payment provider just now. Nothing was charged; "
                         "please try again in a minute.")
    if isinstance(exc, NotFound):
        return PageError(404, "Not found", "There is nothing here, or it belongs to another account.")
    if isinstance(exc, Forbidden):
        return PageError(403, "Not yours", "This belongs to another account. Sign in as its owner to see it.")
    if isinstance(exc, InvalidRequest):
        return PageError(400, "That did not work", exc.message)
    if isinstance(exc, TallyError):
        return PageError(exc.status, "That did not work", exc.message)
    if isinstance(exc, RequestValidationError):
        return PageError(400, "That did not work", "Some of the information sent was missing or not valid.")
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return PageError(404, "Not found", "There is nothing here.")
        return PageError(exc.status_code, "That did not work", "The request could not be handled.")
    log.exception("page error", exc_info=exc)
    return PageError(500, "Something went wrong on our side",
                     "The page could not be shown. Nothing was charged twice; please try again in a minute.")


def error_page(request: Request, exc: Exception) -> Response:
    error = _describe(exc)
    user = getattr(request.state, "page_user", None)
    return render(request, "error.html", {"error": error}, status_code=error.status, user=user)


def finish(request: Request, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages show balances and invoices: never store them in shared caches or the back-forward cache.
    response.headers.setdefault("Cache-Control", "no-store")
    session: PageSession | None = getattr(request.state, "page_session", None)
    if session is not None and session.dirty:
        codec(request).write(response, session)
    return response


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = RedirectResponse(signin_url(exc.next_path), status_code=303)
            except Exception as exc:  # noqa: BLE001 — every page error becomes a page, never a stack trace
                response = error_page(request, exc)
            return finish(request, response)

        return page_handler
