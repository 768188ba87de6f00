"""The account page's wallet against the real app: the balance, what can be spent, what holds reserve, and when
the coins expire, after operator grants and a hold made through the API."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.purchase_flow import new_user
from tests.tally_harness import TallyServer


def account_page(tally: TallyServer, user: str) -> str:
    with httpx.Client(base_url=tally.url, timeout=30) as browser:
        signed = browser.get("/signin/token", params={"token": tally.token(user), "next": "/account"})
        assert signed.status_code == 303
        page = browser.get("/account")
    assert page.status_code == 200, page.text
    return page.text


def shown(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{re.escape(name)}">([^<]*)<', html)
    assert match, name
    return match.group(1)


def schedule(html: str) -> list[tuple[str, str]]:
    """(coins, when) per row of the expiry table, the date as shown and its badge."""
    body = re.search(r'data-testid="expiry-schedule">(.*?)</table>', html, re.DOTALL).group(1)  # type: ignore[union-attr]
    out = []
    for row in re.findall(r"<tr>\s*(<td.*?)</tr>", body, re.DOTALL):
        coins, when = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        out.append((coins, re.sub(r"<[^>]+>", "", when).strip()))
    return out


def grant(tally: TallyServer, user: str, amount: int, category: str, expires_at: datetime | None) -> None:
    body = {"user_id": user, "amount": amount, "category": category, "reason": "Test grant",
            "expires_at": expires_at.isoformat() if expires_at else None}
    with tally.admin_client() as admin:
        answer = admin.post("/v1/admin/credits/grants", json=body)
    assert answer.status_code == 201, answer.text


def test_account_shows_available_held_and_what_expires_when(tally: TallyServer) -> None:
    user = new_user()
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    soon, later = today + timedelta(days=10), today + timedelta(days=90)
    grant(tally, user, 300, "promotional", soon)
    grant(tally, user, 200, "paid", later)
    grant(tally, user, 1000, "paid", None)
    with tally.client(user) as api:
        held = api.post("/v1/credits/holds", json={"amount": 350, "idempotency_key": str(uuid.uuid4())})
    assert held.status_code == 201, held.text

    html = account_page(tally, user)
    assert (shown(html, "balance"), shown(html, "available"), shown(html, "held")) == ("1,500", "1,150", "350")
    # The hold drew the promotional grant (300) and then the paid one that expires first (50 of 200).
    assert schedule(html) == [("150", f"{later:%d %b %Y, %H:%M} UTC"), ("1,000", "Never")]
    assert "Held coins are reserved by work" in html

    with tally.client(user) as api:
        released = api.post(f"/v1/credits/holds/{held.json()['id']}/release")
    assert released.status_code == 200, released.text
    html = account_page(tally, user)
    assert (shown(html, "balance"), shown(html, "available"), shown(html, "held")) == ("1,500", "1,500", "0")
    assert schedule(html) == [("300", f"{soon:%d %b %Y, %H:%M} UTC within 30 days"),
                              ("200", f"{later:%d %b %Y, %H:%M} UTC"), ("1,000", "Never")]
    assert '<th scope="col">Expire</th>' in html


def test_a_new_user_sees_an_empty_wallet(tally: TallyServer) -> None:
    html = account_page(tally, new_user())
    assert (shown(html, "balance"), shown(html, "available"), shown(html, "held")) == ("0", "0", "0")
    assert "expiry-schedule" not in html
