"""One row per promotion code, for ``tally promo list`` and ``/admin/promotions``: Stripe's code and coupon
beside what Tally's paid orders show it did."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import currency as money
from ..db import Database
from ..stripe_gateway import StripeGateway
from . import service


def _amounts(by_currency: dict[str, int]) -> str:
    return ", ".join(money.format_amount(v, c) for c, v in sorted(by_currency.items()))


async def promotion_rows(db: Database, client: StripeGateway) -> list[dict[str, Any]]:
    codes = await service.list_promotions(client)
    async with db.transaction() as session:
        usage = await service.usage_by_code(session)
    now = int(time.time())
    rows = []
    for promo in codes:
        used = usage.get(promo["id"], service.Usage())
        expires = promo.get("expires_at")
        rows.append({
            "id": promo["id"], "code": promo["code"], "status": service.status_of(promo, now),
            "discount": service.describe(promo), "times_redeemed": promo.get("times_redeemed", 0),
            "max_redemptions": promo.get("max_redemptions"),
            # expires_at is the first second after the last day the code works
            "expires": (datetime.fromtimestamp(expires, UTC) - timedelta(seconds=1)).date().isoformat()
            if expires else None,
            "first_time_only": bool((promo.get("restrictions") or {}).get("first_time_transaction")),
            "restricted_to": service.restricted_to(promo),
            "orders": used.orders, "revenue": used.revenue, "discount_given": used.discount,
            "revenue_text": _amounts(used.revenue), "discount_given_text": _amounts(used.discount),
        })
    return rows
