"""The server-rendered pages: sign in, pricing, checkout success/cancel, account and billing.

Routes stay thin: they read the signed-in user from the session cookie, call the same service functions as
the JSON API inside a transaction of their own (``DatabaseDep``: ``PageRoute`` turns errors into pages before a
``SessionDep`` would see them), and render a template. Every POST goes through ``csrf_protected``. Errors become
pages in plain words (see ``web.PageRoute``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from ..auth.schemas import DevLoginRequest
from ..auth.service import Principal, issue_dev_token
from ..deps import (CatalogDep, DatabaseDep, PlanBookDep, PlanPricesDep, PriceBookDep, ServicesDep, SettingsDep,
                    StripeDep, TokenVerifierDep)
from ..errors import InvalidRequest, Unauthenticated
from ..invoices.pdf import render_invoice_pdf, status_of
from ..ledger.routes import parse_cursor
from ..ledger.service import balance_view, list_transactions
from ..orders import history
from ..orders.service import OrderStatus, create_checkout, get_order_status
from ..services import Services
from ..subscriptions import mirror
from ..subscriptions import service as subscriptions
from . import billing
from .plans import INTERVAL_WORDS, feature_label, plans_view
from .pricing import display_price, pricing_view
from .wallet import wallet_view
from .web import MaybeUser, PageError, PageRoute, Session, User, csrf_protected, render, safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)

CsrfChecked = Depends(csrf_protected)
PAGE_SIZE = 10
PAYMENT_ROWS = 20


# -- sign in / out --------------------------------------------------------------------------------
@router.get("/signin")
async def signin_page(request: Request, user: MaybeUser, next: str | None = None) -> Response:
    return render(request, "signin.html", {"next": safe_next(next, "/pricing"), "values": {}, "errors": {}},
                  user=user)


@router.post("/signin", dependencies=[CsrfChecked])
async def signin_demo(request: Request, session: Session, settings: SettingsDep, user_id: Annotated[str, Form()] = "",
                      email: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/pricing") -> Response:
    """Sandbox mode only: the demo sign-in, issuing the same token as ``POST /dev/login``."""
    if not settings.sandbox_mode:
        raise PageError(403, "Demo sign-in is off",
                        "With a real Stripe key, sign in through the app that sent you here.")
    values = {"user_id": user_id.strip(), "email": email.strip()}
    try:
        login = DevLoginRequest(user_id=values["user_id"], email=values["email"] or None)
    except ValidationError as exc:
        errors = {str(e["loc"][0]): ("Enter a user id." if e["loc"][0] == "user_id" else
                                     "Enter a valid email address, like ada@example.com.") for e in exc.errors()}
        return render(request, "signin.html", {"next": safe_next(next, "/pricing"), "values": values,
                                               "errors": errors}, status_code=400)
    ttl = 7 * 86400
    session.sign_in(issue_dev_token(settings, login.user_id, login.email, ttl=ttl), int(time.time()) + ttl)
    return RedirectResponse(safe_next(next, "/pricing"), status_code=303)


@router.get("/signin/token")
async def signin_with_token(session: Session, verifier: TokenVerifierDep, token: str = "",
                            next: str | None = None) -> Response:
    """How an app signs its user in to these pages: redirect here with the user's JWT (the same token the
    API accepts). The token is verified before it is kept; the redirect drops it from the address bar."""
    try:
        claims = await verifier.verify(token)
    except Unauthenticated as exc:
        raise PageError(401, "The sign-in link did not work",
                        f"{exc.message} Go back to the app and try again.") from None
    exp = claims.get("exp")
    session.sign_in(token, exp if isinstance(exp, int) else None)
    return RedirectResponse(safe_next(next, "/pricing"), status_code=303)


@router.post("/signout", dependencies=[CsrfChecked])
async def signout(session: Session) -> Response:
    session.sign_out()
    return RedirectResponse("/pricing", status_code=303)


# -- pricing and checkout -------------------------------------------------------------------------
@router.get("/")
@router.get("/pricing")
async def pricing(request: Request, user: MaybeUser, catalog: CatalogDep, book: PlanBookDep, database: DatabaseDep,
                  currency: str | None = None, interval: str | None = None) -> Response:
    current = None
    if user is not None:
        async with database.transaction() as db:
            current = await mirror.current(db, user.user_id)
    on_plan = current is not None and current.has_access
    plans = plans_view(book, interval, current_plan=current.plan_id if on_plan else None,
                       current_interval=current.interval if on_plan else None)
    return render(request, "pricing.html", {
        "view": pricing_view(catalog, currency), "plans": plans, "interval_words": INTERVAL_WORDS,
        "subscribed": current is not None and current.status in SUBSCRIBED}, user=user)


# A user with one of these cannot start another subscription: the page offers "Manage billing" instead.
SUBSCRIBED = frozenset({"active", "trialing", "past_due", "unpaid", "paused"})


@router.post("/subscribe", dependencies=[CsrfChecked])
async def start_subscription(user: User, database: DatabaseDep, client: StripeDep, settings: SettingsDep,
                             book: PlanBookDep, prices: PlanPricesDep, catalog: CatalogDep,
                             plan_id: Annotated[str, Form(max_length=64)],
                             interval: Annotated[str, Form(max_length=8)] = "month") -> Response:
    """Subscribe: a Checkout Session in subscription mode, then off to its page; back to the account page."""
    base = settings.public_url.rstrip("/")
    async with database.transaction() as db:
        started = await subscriptions.start_checkout(
            db, client, settings=settings, book=book, prices=prices, catalog=catalog, principal=user,
            plan_id=plan_id, interval=interval, success_url=f"{base}/account?subscription=started",
            cancel_url=f"{base}/pricing?interval={interval}")
    return RedirectResponse(started.checkout_url, status_code=303)


@router.post("/checkout", dependencies=[CsrfChecked])
async def start_checkout(user: User, catalog: CatalogDep, prices: PriceBookDep, database: DatabaseDep,
                         client: StripeDep, settings: SettingsDep, pack_id: Annotated[str, Form(max_length=64)],
                         currency: Annotated[str | None, Form(max_length=3)] = None) -> Response:
    """Buy: a pending order and a Checkout Session (Stripe's or the sandbox's) in the currency the pricing
    page showed, then off to its page. The amount is the catalog's price in that currency."""
    async with database.transaction() as db:
        started = await create_checkout(
            db, client, settings=settings, catalog=catalog, prices=prices, principal=user,
            pack_id=pack_id, currency=currency or None,
            success_url=f"{settings.public_url.rstrip('/')}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}",
            # None: the default cancel URL is this app's /checkout/cancel with the order id, which only
            # exists once create_checkout has made the order.
            cancel_url=None)
    return RedirectResponse(started.checkout_url, status_code=303)


def _status_view(status: OrderStatus) -> dict[str, Any]:
    order = status.order
    return {"order": order, "coins_added": status.coins_added, "balance": status.balance,
            "invoice": status.invoice, "price": display_price(order.amount, order.currency)}


async def _order_status(services: Services, user: Principal, session_id: str) -> OrderStatus:
    if not session_id:
        raise InvalidRequest("This page needs the checkout session it is about; start again from pricing.")
    async with services.db.transaction() as db:
        return await get_order_status(db, services.stripe, settings=services.settings, principal=user,
                                      order_or_session_id=session_id)


@router.get("/checkout/success")
async def checkout_success(request: Request, user: User, services: ServicesDep, session_id: str = "") -> Response:
    """Back from Checkout. The redirect proves nothing: the order's state is read from the server (which
    asks Stripe and fulfils a paid order on the spot); while it is pending the page polls."""
    status = await _order_status(services, user, session_id)
    return render(request, "success.html", {**_status_view(status), "session_id": session_id}, user=user)


@router.get("/checkout/status")
async def checkout_status(user: User, services: ServicesDep, session_id: str = "") -> Response:
    """What the success page polls while the payment is being confirmed."""
    status = await _order_status(services, user, session_id)
    return JSONResponse({"status": status.order.status, "done": status.order.status != "pending",
                         "coins_added": status.coins_added, "balance": status.balance})


@router.get("/checkout/cancel")
async def checkout_cancel(request: Request, user: MaybeUser, services: ServicesDep, order_id: str = "") -> Response:
    """Back from Checkout without paying. Nothing was charged — checked, not assumed, when the order is
    known: a payment that did go through (a race with the back button) is said so."""
    status = None
    if user is not None and order_id:
        status = await _order_status(services, user, order_id)
    return render(request, "cancel.html", {"status": status}, user=user)


# -- account --------------------------------------------------------------------------------------
@router.get("/account")
async def account(request: Request, user: User, database: DatabaseDep, book: PlanBookDep, tx: str | None = None,
                  inv: str | None = None) -> Response:
    tx_after, inv_after = parse_cursor(tx), billing.parse_invoice_cursor(inv)
    async with database.transaction() as db:
        wallet = wallet_view(await balance_view(db, user.user_id))
        transactions, tx_more = await list_transactions(db, user.user_id, limit=PAGE_SIZE, starting_after=tx_after)
        invoices = await billing.list_billing_invoices(db, user.user_id, limit=PAGE_SIZE, after=inv_after)
        orders = await history.list_orders(db, user.user_id, limit=PAYMENT_ROWS)
        subscription_payments = [
            *await billing.paid_subscription_payments(db, user.user_id, limit=PAYMENT_ROWS),
            *await billing.failed_subscription_payments(db, user.user_id, limit=PAYMENT_ROWS)]
        subscription = subscriptions.view(await mirror.current(db, user.user_id), book)
    plan = book.get(subscription["plan"] or "")
    pending = subscription["pending_change"]
    return render(request, "account.html", {
        "subscription": subscription, "plan": plan,
        "features": [feature_label(f) for f in subscription["entitlements"]],
        "pending_plan": book.get(pending["plan"]) if pending else None,
        "just_subscribed": request.query_params.get("subscription") == "started",
        "just_changed": request.query_params.get("subscription") == "changed",
        "from_unix": lambda seconds: datetime.fromtimestamp(seconds, UTC),
        "wallet": wallet, "transactions": transactions, "invoices": invoices.rows,
        "payments": billing.payment_history(orders.orders, orders.has_more, subscription_payments,
                                            limit=PAYMENT_ROWS),
        "payment_rows": PAYMENT_ROWS,
        "tx_next": str(transactions[-1].id) if tx_more else None, "tx_paged": tx_after is not None,
        "inv_next": invoices.next_cursor, "inv_paged": inv_after is not None,
        "inv_cursor": inv, "tx_cursor": tx, "price": display_price}, user=user)


@router.post("/subscription/change", dependencies=[CsrfChecked])
async def change_subscription(user: User, database: DatabaseDep, client: StripeDep, book: PlanBookDep,
                              prices: PlanPricesDep, plan_id: Annotated[str, Form(max_length=64)],
                              interval: Annotated[str, Form(max_length=8)] = "month") -> Response:
    """Switch plan from the pricing page: an upgrade now (prorated), a downgrade at the end of the period."""
    await subscriptions.change_plan(database, client, book=book, prices=prices, principal=user, plan_id=plan_id,
                                    interval=interval)
    return RedirectResponse("/account?subscription=changed#subscription", status_code=303)


@router.post("/account/billing", dependencies=[CsrfChecked])
async def manage_billing(user: User, database: DatabaseDep, client: StripeDep, settings: SettingsDep) -> Response:
    """"Manage billing": a fresh Stripe billing portal session (card, plan, cancel, invoices), back to /account."""
    async with database.transaction() as db:
        url = await subscriptions.portal_url(db, client, settings=settings, principal=user)
    return RedirectResponse(url, status_code=303)


@router.get("/account/invoices/{number}.pdf")
async def invoice_pdf(user: User, database: DatabaseDep, number: str) -> Response:
    """The invoice as a PDF, to its owner only: anyone else gets the same 404 as for a number that does
    not exist, so invoice numbers (sequential by design) reveal nothing."""
    async with database.transaction() as db:
        found = await history.find_user_invoice(db, user.user_id, number)
    if found is None:
        raise PageError(404, "Invoice not found", "There is no invoice with this number in your account.")
    order = found.order
    body = render_invoice_pdf(found.invoice, status_of(order.status, order.amount, order.amount_refunded))
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{found.invoice.number}.pdf"'})
