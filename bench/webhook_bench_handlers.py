"""The benchmark's handler, loaded into API and worker processes through ``TALLY_HANDLER_MODULES``.

It does the ledger part of the bare-SQL baseline (update one of 10 000 balances, insert a ledger entry)
inside the worker's processing transaction, so the pipeline and the baseline write the same rows. The
domain's real handlers re-fetch objects from Stripe; that network call is Stripe's time, not Tally's, and
is left out on purpose."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tally.webhooks.dispatch import HandlerContext, handles

EVENT_TYPE = "bench.credit"
ACCOUNTS = 10_000

SCHEMA = f"""
DROP TABLE IF EXISTS bench_balances, bench_ledger, bench_inbox;
CREATE TABLE bench_balances (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);
INSERT INTO bench_balances (id) SELECT generate_series(1, {ACCOUNTS});
CREATE TABLE bench_ledger (id bigserial PRIMARY KEY, account int NOT NULL, amount bigint NOT NULL,
                           balance_after bigint NOT NULL, event_id text NOT NULL,
                           created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_inbox (LIKE webhook_events INCLUDING ALL);
"""


CREDIT = text("""
    WITH b AS (UPDATE bench_balances SET balance = balance + :amount WHERE id = :account RETURNING id, balance)
    INSERT INTO bench_ledger (account, amount, balance_after, event_id)
    SELECT id, :amount, balance, :event_id FROM b""")


@handles(EVENT_TYPE)
async def credit(ctx: HandlerContext, event: dict[str, Any]) -> None:
    obj = event["data"]["object"]
    await ctx.session.execute(CREDIT, {"amount": obj["amount"], "account": obj["account"], "event_id": ctx.event_id})
