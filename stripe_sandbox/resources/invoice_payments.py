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
    collection = (sb.store.collection("invoice_payment", "invoice", invoice) if invoice
                  else sb.store.collection("invoice_payment"))
    return paginate(sb.store, collection, p, "/v1/invoice_payments",
                    (lambda x: x["status"] == status) if status else None)
