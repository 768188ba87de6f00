"""Paying an order by confirming its PaymentIntent from the server: what ``POST /v1/orders/{id}/confirm`` and the
drop-in ``POST /api/stripe/confirm-payment`` both do."""

from __future__ import annotations


from ..auth.service import Principal
from ..catalog.service import Catalog
from ..config import Settings
from ..db import Database
from . import intents
from ..stripe_gateway import StripeGateway


async def confirm_order_payment(db: Database, client: StripeGateway, *, settings: Settings, catalog: Catalog,
                                principal: Principal, reference: str, payment_method_id: str | None,
                                payment_method_type: str | None, return_url: str | None,
                                mandate: intents.Mandate) -> intents.PaymentState:
    """Confirm in a transaction of its own, committed even on a decline: the failed order is the record of it,
    so a caller raises the decline (``state.declined``) only after this has returned."""
    async with db.transaction() as session:
        return await intents.confirm_payment(
            session, client, settings=settings, catalog=catalog, principal=principal, reference=reference,
            payment_method_id=payment_method_id, payment_method_type=payment_method_type, return_url=return_url,
            mandate=mandate)
