"""Tax through Tally (issue 18, item 1), on the sandbox's Stripe Tax with a German head office: a buyer in
Germany pays 19 % VAT on top of the pack's price; a French business with a valid VAT ID pays no VAT (reverse
charge). The order, the invoice, its PDF (rendered and read back) and the receipt show net, tax and total."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, order_row, sdk, sql,
                                             wait_processed)
from tests.integration.test_receipts import outbox

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)
FORM = {"cardNumber": "4242424242424242", "cardExpiry": "12 / 34", "cardCvc": "123", "billingName": "Ada Lovelace"}


@pytest.fixture(autouse=True)
def german_seller(tally: Any) -> None:
    sdk(tally).v1.tax.settings.update(params={"head_office": {"address": {"country": "DE"}}})


def buy(tally: Any, user: str, email: str, **address: str) -> tuple[dict[str, Any], list[int]]:
    """Buy the Plus pack, typing ``address`` on the hosted page; the statuses of the page's answers."""
    with tally.client(user, email) as client:
        started = checkout(client, "plus")
    statuses = []
    with httpx.Client(base_url=tally.sandbox.url, timeout=30) as page:
        for _ in range(2):
            answer = page.post(f"/c/pay/{started['session_id']}", data={**FORM, "email": email, **address})
            statuses.append(answer.status_code)
            if answer.status_code == 303:
                break
    wait_processed(tally, started["session_id"], "checkout.session.completed")
    return order_row(tally, started["order_id"]), statuses


def pdf_text(tally: Any, email: str) -> str:
    [receipt] = outbox(tally, email, "receipt")
    pdf = httpx.get(f"{tally.url}/outbox/{receipt['id']}/attachment")
    assert pdf.status_code == 200
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)


def test_a_buyer_in_germany_pays_19_percent_vat_on_top(tally: Any) -> None:
    user = new_user()
    email = f"{user}@example.com"
    order, statuses = buy(tally, user, email, country="DE", postalCode="10115")
    assert statuses == [200, 303]  # the page showed the tax before taking the money
    assert (order["amount"], order["amount_subtotal"], order["amount_tax"]) == (1189, 999, 190)
    assert order["tax_details"]["address"]["country"] == "DE" and not order["tax_details"]["reverse_charge"]
    assert (order["coins"], order["bonus"]) == (1000, 100)
    [(amount, tax, lines)] = sql(tally, "SELECT amount, amount_tax, tax_lines FROM invoices WHERE order_id = %s",
                                 order["id"])
    assert (amount, tax, lines[0]["percentage"], lines[0]["country"]) == (1189, 190, "19.0", "DE")
    text = pdf_text(tally, email)
    for expected in ("Net", "9.99 USD", "VAT 19 % (DE)", "1.90 USD", "Total", "11.89 USD", "DE"):
        assert expected in text, (expected, text)
    assert "Reverse charge" not in text
    [receipt] = outbox(tally, email, "receipt")
    assert "Tax: $1.90" in receipt["body"] and "Total paid: $11.89" in receipt["body"]


def test_a_french_business_with_a_vat_id_is_reverse_charged(tally: Any) -> None:
    user = new_user()
    email = f"{user}@example.com"
    order, statuses = buy(tally, user, email, country="FR", taxId="FR12345678901")
    assert statuses == [303]  # nothing added: paid at once
    assert (order["amount"], order["amount_tax"]) == (999, 0) and order["tax_details"]["reverse_charge"]
    [(reverse, tax_ids)] = sql(tally, "SELECT reverse_charge, customer_tax_ids FROM invoices WHERE order_id = %s",
                               order["id"])
    assert reverse and tax_ids == [{"type": "eu_vat", "value": "FR12345678901"}]
    text = pdf_text(tally, email)
    assert "VAT ID: FR12345678901" in text and "VAT reverse charge (FR)" in text
    assert "Reverse charge: VAT to be accounted for by the recipient" in text and "9.99 USD" in text


def test_the_dashboard_splits_revenue_into_net_and_tax(tally: Any) -> None:
    import re
    from datetime import UTC, datetime, time, timedelta
    from decimal import Decimal

    user = new_user()
    buy(tally, user, f"{user}@example.com", country="DE")
    with tally.admin_client() as admin:
        page = admin.get("/admin").text
    figures = {kind: Decimal(re.search(rf'data-testid="{kind}-usd">([\d.]+) USD', page).group(1))  # type: ignore
               for kind in ("tax", "net")}
    start = datetime.combine(datetime.now(UTC).date() - timedelta(days=29), time(), UTC)  # the default period
    end = start + timedelta(days=30)  # invoices paid on a test clock ahead of today are outside it
    [(tax, gross)] = sql(tally, "SELECT sum(amount_tax), sum(amount) FROM orders WHERE status IN ('paid', 'refunded') "
                                "AND currency = 'usd' AND paid_at >= %s AND paid_at < %s", start, end)
    [(subscriptions,)] = sql(tally, "SELECT COALESCE(sum(amount_paid), 0) FROM subscription_invoices "
                                    "WHERE currency = 'usd' AND amount_paid > 0 AND COALESCE(to_timestamp(paid_at), "
                                    "created_at) >= %s AND COALESCE(to_timestamp(paid_at), created_at) < %s",
                             start, end)
    assert tax >= 190 and figures["tax"] == Decimal(tax) / 100
    assert figures["net"] == Decimal(gross + subscriptions - tax) / 100
