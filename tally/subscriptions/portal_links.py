"""Portal links in emails: a signed link that opens a fresh billing portal session when clicked (portal sessions
themselves expire in minutes, too soon for an email)."""

from __future__ import annotations

import datetime as dt
import hashlib

import jwt

from ..config import Settings

PORTAL_LINK_DAYS = 14


def _link_key(settings: Settings) -> str:
    # A key of its own, derived from the JWT secret: a portal link can never pass as a login token.
    return hashlib.sha256(("tally-portal-link:" + settings.dev_jwt_secret).encode()).hexdigest()


def portal_link(settings: Settings, customer_id: str) -> str:
    """A link that opens a fresh billing portal session when clicked (portal sessions themselves expire in
    minutes, too soon for an email)."""
    token = jwt.encode({"cus": customer_id, "exp": dt.datetime.now(dt.UTC) + dt.timedelta(days=PORTAL_LINK_DAYS)},
                       _link_key(settings), algorithm="HS256")
    return f"{settings.public_url.rstrip('/')}/billing/portal/{token}"


def customer_from_link(settings: Settings, token: str) -> str | None:
    try:
        claims = jwt.decode(token, _link_key(settings), algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    customer = claims.get("cus")
    return customer if isinstance(customer, str) else None
