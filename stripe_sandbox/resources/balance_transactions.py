"""Balance transactions: the money a dispute moves (its withdrawal and, when won, its reinstatement).

Only disputes record them so far; charges and refunds still carry a bare ``txn_`` id with no object behind it.
A recorded transaction can be retrieved by id.
"""

from __future__ import annotations

from typing import Any

from ..errors import no_such
from ..ids import new_id
from ..params import Params
from ..routing import route
from ..store import Obj


def record(sb: Any, *, amount: int, currency: str, source: str, description: str, reporting_category: str,
           fee: int = 0, fee_description: str | None = None) -> Obj:
    """Store and return an ``adjustment`` of ``amount`` (minor units, negative = debit) plus an optional Stripe
    fee, available at once as Stripe's adjustments are."""
    now = sb.clock.now_int()
    fee_details = [{"amount": fee, "application": None, "currency": currency, "description": fee_description,
                    "type": "stripe_fee"}] if fee else []
    transaction: Obj = {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": "available",
        "type": "adjustment",
    }
    sb.store.add(transaction)
    return transaction


@route("GET", "/v1/balance_transactions/{transaction_id}")
def retrieve(sb: Any, p: Params, transaction_id: str) -> Obj:
    transaction = sb.store.get(transaction_id, "balance_transaction")
    if transaction is None:
        raise no_such("balance transaction", transaction_id, "id")
    return transaction
