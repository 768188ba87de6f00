"""A Checkout Session as stored: the session, and its private bookkeeping object (``checkout_extras``: line
items, ``payment_intent_data``, what the payer typed), which keeps the session dict exactly what the API returns.

Below the session routes and the modules that work on a session (discounts, tax, paying, completing)."""

from __future__ import annotations

from typing import Any

from ..errors import no_such
from ..store import Obj

EXTRAS_TYPE = "checkout_extras"


def get_session(sb: Any, session_id: str, param: str = "session") -> Obj:
    session = sb.store.get(session_id, "checkout.session")
    if session is None:
        raise no_such("checkout.session", session_id, param)
    return session


def extras(sb: Any, session: Obj) -> Obj:
    """The session's private bookkeeping (line items, payment_intent_data, payer's entries)."""
    found = sb.store.get(extras_id(session["id"]), EXTRAS_TYPE)
    assert found is not None, f"no extras for {session['id']}"
    return found


def extras_id(session_id: str) -> str:
    return f"{session_id}~extras"


def line_items(sb: Any, session: Obj) -> list[Obj]:
    """The session's line items, each with its price as it is now (Stripe embeds the current price)."""
    out = []
    for item in extras(sb, session)["line_items"]:
        item = dict(item)
        item["price"] = sb.store.get(item["price"], "price") or item["price"]
        out.append(item)
    return out
