"""The page behind ``next_action``: 3-D Secure for cards, the bank's or wallet's page for redirect methods.

``GET /authorize/{pi}?token=...`` shows two buttons; posting the form finishes the PaymentIntent and
redirects to its ``return_url`` with ``payment_intent``, ``payment_intent_client_secret`` and
``redirect_status``, as Stripe does. The token comes from the URL in the PaymentIntent's ``next_action``, so
a page from an earlier attempt cannot finish a later one. Plain HTML forms: no JavaScript needed.
"""

from __future__ import annotations

import hmac
import io
from typing import Any
from urllib.parse import parse_qsl, parse_qs, urlencode, urlsplit, urlunsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
import segno
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..routing import PAGE_ROUTES
from ..store import Obj
from .payment_intents import action_url, finish_authentication, return_url_of
from .refunds import money

_templates = Environment(loader=PackageLoader("stripe_sandbox", "templates"), autoescape=select_autoescape())

METHOD_NAMES = {"card": "Card", "alipay": "Alipay", "bancontact": "Bancontact", "fpx": "FPX", "grabpay": "GrabPay",
                "ideal": "iDEAL", "klarna": "Klarna", "p24": "Przelewy24", "paynow": "PayNow"}


def _token_of(pi: Obj) -> str | None:
    url = action_url(pi)
    if url is None:
        return None
    return (parse_qs(urlsplit(url).query).get("token") or [None])[0]


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect_status(pi: Obj) -> str:
    return {"succeeded": "succeeded", "requires_capture": "succeeded", "processing": "processing"}.get(
        pi["status"], "failed")


def _render(status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template("authorize.html").render(**context), status)


def _method(sb: Any, pi: Obj) -> tuple[str, str]:
    pm = sb.store.get(pi["payment_method"] or "", "payment_method")
    type_ = pm["type"] if pm else "card"
    if pm and type_ == "card":
        return type_, f"{pm['card']['brand'].title()} •••• {pm['card']['last4']}"
    return type_, METHOD_NAMES.get(type_, type_)


def _check(sb: Any, pi_id: str, token: str) -> tuple[Obj | None, str | None]:
    """The PaymentIntent if this page may finish it, else why not."""
    pi = sb.store.get(pi_id, "payment_intent")
    if pi is None:
        return None, "This payment does not exist."
    expected = _token_of(pi)
    if pi["status"] != "requires_action" or expected is None or not hmac.compare_digest(expected, token):
        return pi, "This authentication page has expired: the payment no longer waits for it."
    return pi, None


async def show(request: Request) -> Response:
    sb = request.app.state.sandbox
    pi, problem = _check(sb, request.path_params["pi_id"], request.query_params.get("token", ""))
    if problem or pi is None:
        return _render(409 if pi else 404, title="Nothing to authorize", state="done", message=problem,
                       return_url=None)
    type_, method = _method(sb, pi)
    card = type_ == "card"
    qr_code = (pi["next_action"] or {}).get("paynow_display_qr_code")
    if qr_code is not None:
        return _render(
            title=f"{METHOD_NAMES.get(type_, type_)} test payment", state="pending",
            explanation="Scan this QR code with your banking app to pay. This is a test page: choose the outcome.",
            qr_url=qr_code["image_url_svg"], amount=money(pi["amount"], pi["currency"]), method=method,
            description=pi["description"], action_url=f"/authorize/{pi['id']}",
            token=request.query_params.get("token", ""), complete_label="Simulate a scan and payment",
            fail_label="Fail test payment")
    return _render(
        title="3D Secure authentication" if card else f"{METHOD_NAMES.get(type_, type_)} test payment",
        state="pending",
        explanation=("Your bank asks you to confirm this payment. This is a test page: choose whether the "
                     "authentication succeeds." if card else
                     "You were redirected to authorize this payment. This is a test page: choose the outcome."),
        amount=money(pi["amount"], pi["currency"]),
        method=method,
        description=pi["description"],
        action_url=f"/authorize/{pi['id']}",
        token=request.query_params.get("token", ""),
        complete_label="Complete authentication" if card else "Authorize test payment",
        fail_label="Fail authentication" if card else "Fail test payment",
    )


async def submit(request: Request) -> Response:
    sb = request.app.state.sandbox
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    pi, problem = _check(sb, request.path_params["pi_id"], form.get("token", ""))
    if problem or pi is None:
        return _render(409 if pi else 404, title="Nothing to authorize", state="done", message=problem,
                       return_url=None)
    action = form.get("action")
    if action not in ("complete", "fail"):
        return _render(400, title="Unknown action", state="done", message="Choose one of the two buttons.",
                       return_url=None)
    return_url = return_url_of(pi)
    finish_authentication(sb, pi, approved=action == "complete")
    status = redirect_status(pi)
    if return_url:
        target = with_query(return_url, {"payment_intent": pi["id"],
                                         "payment_intent_client_secret": pi["client_secret"],
                                         "redirect_status": status})
        return RedirectResponse(target, status_code=303)
    message = ("Authentication complete. You can close this page." if status != "failed"
               else "Authentication failed. You can close this page.")
    return _render(title="Authentication finished", state="done", message=message, return_url=None)


async def qr_image(request: Request) -> Response:
    """The QR code image of a PaymentIntent's ``*_display_qr_code`` next action (``/qr/{pi}.svg`` or ``.png``)."""
    sb = request.app.state.sandbox
    pi_id, _, kind = request.path_params["name"].rpartition(".")
    pi = sb.store.get(pi_id, "payment_intent")
    action = (pi or {}).get("next_action") or {}
    qr_code = action.get(action.get("type") or "") if (action.get("type") or "").endswith("_display_qr_code") \
        else None
    if qr_code is None or kind not in ("svg", "png"):
        return Response("No QR code here.", status_code=404, media_type="text/plain")
    image, out = segno.make(qr_code["data"], error="m"), io.BytesIO()
    image.save(out, kind=kind, scale=6, **({"title": "QR code to pay"} if kind == "svg" else {}))
    return Response(out.getvalue(), media_type="image/svg+xml" if kind == "svg" else "image/png")


PAGE_ROUTES.append(Route("/authorize/{pi_id}", show, methods=["GET"]))
PAGE_ROUTES.append(Route("/qr/{name}", qr_image, methods=["GET"]))
PAGE_ROUTES.append(Route("/authorize/{pi_id}", submit, methods=["POST"]))
