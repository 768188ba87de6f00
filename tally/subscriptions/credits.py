"""Subscription credits in the ledger: one balanced transaction per grant, from ``system:purchases`` (credits
sold for money, as packs are) to the user's wallet, exactly once per ``reference``:

- ``invoice:{in_…}:grant``: the credits of a paid subscription invoice (first period, each renewal, a new cycle);
- ``subscription_change:{id}:grant``: the prorated difference of an upgrade (rule in ``plans.upgrade_credits``).

Built on the ledger's own primitives (header insert with ``ON CONFLICT DO NOTHING`` on the unique reference,
balanced entries, ``balance = balance + :delta``), the same way ``ledger.service.grant_purchase`` is; a public
"grant" helper in ``tally.ledger`` would let this module stop reaching for its underscored functions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..ledger import service as ledger
from ..ledger.models import PURCHASES


async def grant(session: AsyncSession, *, user_id: str, reference: str, credits: int, description: str,
                details: dict[str, Any] | None = None) -> ledger.Movement:
    """Add ``credits`` to the user's wallet once per ``reference``; a replay returns the first movement."""
    wallet = await ledger.ensure_wallet(session, user_id)
    tx_id = await ledger._open_transaction(session, reference=reference, kind="subscription", user_id=user_id,
                                           description=description, details=details)
    if tx_id is None:
        return await ledger._existing(session, reference, wallet)
    if credits <= 0:  # a header alone still records that this reference was handled (e.g. a trial invoice)
        return ledger.Movement(tx_id, 0, await ledger.get_balance(session, user_id), created=True)
    balance = int((await session.execute(ledger._ADD, {"delta": credits, "user_id": user_id})).scalar_one())
    await ledger._write_entries(session, tx_id, [
        ledger.Posting(wallet, credits, "subscription", balance),
        ledger.Posting(await ledger.system_account(session, PURCHASES), -credits, "subscription")])
    return ledger.Movement(tx_id, credits, balance, created=True)
