"""Invoice payments (the link from an invoice to its PaymentIntent): retrieve, list by ``invoice``."""

from __future__ import annotations

from typing import Any

from ..errors import no_such
from ..listing import LIST_PARAMS, paginate
from ..params import Params
from ..routing import route
from ..store import Obj


@route("GET", "/v1/invoice_payments/{payment_id}")
def retrieve(sb: Any, p: Params, payment_id: str) -> Obj:
    payment = sb.store.get(payment_id, "invoice_payment")
    if payment is None:
        raise no_such("invoice payment", payment_id, "id")
    return payment


@route("GET", "/v1/invoice_payments", params=(*LIST_PARAMS, "invoice", "payment", "status", "created"))
def list_(sb: Any, p: Params) -> Obj:
    invoice = p.optional_str("invoice")
    status = p.optional_str("status")
    payment = p.dict("payment")
    wanted = ({"type": payment.str("type", required=True), **{k: payment.str(k) for k in ("payment_intent",)
                                                               if k in payment}} if payment else {})
    collection = (sb.store.collection("invoice_payment", "invoice", invoice) if invoice
                  else sb.store.collection("invoice_payment"))

    def matches(x: Obj) -> bool:
        return ((not status or x["status"] == status)
                and all(x["payment"].get(k) == v for k, v in wanted.items()))

    return paginate(sb.store, collection, p, "/v1/invoice_payments", matches if (status or wanted) else None)
