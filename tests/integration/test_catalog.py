"""The catalog over HTTP and in Stripe: synced Products/Prices found by lookup key, re-sync is a no-op,
a changed amount moves the lookup key to a new Price; and a JPY catalog charges whole yen."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from tally.catalog.service import parse_catalog, sync_to_stripe
from tally.stripe_gateway import make_client
from tests.integration.purchase_flow import (STRIPE_HTTPX_WARNING, checkout, new_user, pay, sdk, wait_processed)
from tests.tally_harness import TallyServer, fresh_database

pytestmark = pytest.mark.filterwarnings(STRIPE_HTTPX_WARNING)


def test_get_catalog_lists_the_packs_synced_to_stripe(tally: Any) -> None:
    with tally.client() as anonymous:  # the catalog is public
        body = anonymous.get("/v1/catalog").json()
    assert [p["id"] for p in body["packs"]] == ["starter", "plus", "pro", "mega"]
    with tally.client() as anonymous:  # one plan model: the catalog lists the plans of the plans file
        assert body["plans"] == anonymous.get("/v1/plans").json()["data"]
    assert [p["id"] for p in body["plans"]] == ["basic", "pro"]
    assert set(body["packs"][0]) == {"id", "name", "amount", "currency", "coins", "bonus", "lookup_key"}
    for pack in body["packs"]:
        prices = sdk(tally).v1.prices.list(params={"lookup_keys": [pack["lookup_key"]]}).data
        assert len(prices) == 1
        assert (prices[0].unit_amount, prices[0].currency) == (pack["amount"], pack["currency"])


def test_sync_is_idempotent_and_moves_the_lookup_key_on_a_price_change(tally: Any) -> None:
    pack_id = f"t{uuid.uuid4().hex[:8]}"
    text = f'[[packs]]\nid = "{pack_id}"\nname = "Test"\namount = 500\ncurrency = "eur"\ncoins = 10\n'

    async def three_syncs() -> tuple[Any, Any, Any]:
        # One event loop for the client: its HTTP connection pool belongs to the loop that opened it.
        client = make_client("sk_test_tally_sandbox", tally.sandbox.url, max_network_retries=0)
        return (await sync_to_stripe(client, parse_catalog(text)), await sync_to_stripe(client, parse_catalog(text)),
                await sync_to_stripe(client, parse_catalog(text.replace("500", "700"))))

    first, again, changed = asyncio.run(three_syncs())
    assert len(first.created) == 2  # product + price
    assert again.created == [] and again.prices == first.prices
    key = f"tally_pack_{pack_id}"
    assert changed.prices[key] != first.prices[key]
    current = sdk(tally).v1.prices.list(params={"lookup_keys": [key]}).data
    assert [p.id for p in current] == [changed.prices[key]] and current[0].unit_amount == 700
    old = sdk(tally).v1.prices.retrieve(first.prices[key])
    assert old.lookup_key is None and old.active is False


def test_jpy_pack_is_bought_in_whole_yen(tmp_path: Path) -> None:
    catalog = tmp_path / "jpy.toml"
    catalog.write_text('[[packs]]\nid = "yen"\nname = "Yen pack"\namount = 500\ncurrency = "jpy"\n'
                       'coins = 300\nbonus = 30\n')
    # Its own database: a second worker on the shared one could take jobs whose objects live in the
    # other server's sandbox.
    with fresh_database() as url, TallyServer(url, TALLY_CATALOG=str(catalog)) as server:
        user = new_user()
        with server.client(user) as client:
            assert client.get("/v1/catalog").json()["packs"][0]["amount"] == 500
            started = checkout(client, "yen")
            session = sdk(server).v1.checkout.sessions.retrieve(started["session_id"])
            assert (session.amount_total, session.currency) == (500, "jpy")
            pay(server, started["session_id"])
            wait_processed(server, started["session_id"], "checkout.session.completed")
            order = client.get(f"/v1/orders/{started['order_id']}").json()
            assert (order["status"], order["amount"], order["currency"], order["balance"]) == ("paid", 500, "jpy", 330)
            invoice = client.get("/v1/invoices").json()["data"][0]
            assert (invoice["amount"], invoice["currency"]) == (500, "jpy")
