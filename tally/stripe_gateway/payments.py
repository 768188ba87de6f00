"""Named Stripe calls for one-time payments: Checkout Sessions, PaymentIntents, charges, refunds, disputes,
customers, promotion codes and coupons.

Each mutating call takes ``idempotency_key`` as a required keyword (``keys.idempotency_key`` / ``update_key``):
``None`` only where every attempt is meant to be a new request, and then the caller says why (the SDK then
sends a random key of its own, reused by its network retries)."""

from __future__ import annotations

from collections.abc import Sequence

from .calls import Answer, Params, StripeCalls, answer, every, expanding, first_page, keyed, sdk_params


class PaymentCalls(StripeCalls):
    # -- Checkout Sessions ------------------------------------------------------------------------
    async def create_checkout_session(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.checkout.sessions.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    async def retrieve_checkout_session(self, session_id: str, *, expand: Sequence[str] = ()) -> Answer:
        return answer(await self._sdk.v1.checkout.sessions.retrieve_async(session_id, params=expanding(expand)))

    async def expire_checkout_session(self, session_id: str, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.checkout.sessions.expire_async(
            session_id, options=keyed(idempotency_key)))

    async def list_checkout_sessions(self, params: Params) -> list[Answer]:
        return await every(self._sdk.v1.checkout.sessions.list_async, params)

    # -- PaymentIntents ---------------------------------------------------------------------------
    async def create_payment_intent(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.payment_intents.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    async def retrieve_payment_intent(self, payment_intent_id: str, *, expand: Sequence[str] = ()) -> Answer:
        return answer(await self._sdk.v1.payment_intents.retrieve_async(payment_intent_id,
                                                                         params=expanding(expand)))

    async def update_payment_intent(self, payment_intent_id: str, params: Params, *,
                                    idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.payment_intents.update_async(
            payment_intent_id, params=sdk_params(params),
            options=keyed(idempotency_key)))

    async def confirm_payment_intent(self, payment_intent_id: str, params: Params, *,
                                     idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.payment_intents.confirm_async(
            payment_intent_id, params=sdk_params(params),
            options=keyed(idempotency_key)))

    async def list_payment_intents(self, params: Params) -> list[Answer]:
        return await every(self._sdk.v1.payment_intents.list_async, params)

    async def retrieve_payment_method(self, payment_method_id: str) -> Answer:
        return answer(await self._sdk.v1.payment_methods.retrieve_async(payment_method_id))

    # -- charges, refunds, disputes ---------------------------------------------------------------
    async def retrieve_charge(self, charge_id: str) -> Answer:
        return answer(await self._sdk.v1.charges.retrieve_async(charge_id))

    async def list_refunds(self, charge_id: str) -> list[Answer]:
        """The charge's refunds, as one page of up to 100 (Stripe allows a charge far fewer)."""
        return await first_page(self._sdk.v1.refunds.list_async, {"charge": charge_id, "limit": 100})

    async def retrieve_dispute(self, dispute_id: str) -> Answer:
        return answer(await self._sdk.v1.disputes.retrieve_async(dispute_id))

    async def list_invoice_payments(self, payment_intent_id: str, *, limit: int = 1) -> list[Answer]:
        """The invoice payments made by a PaymentIntent (one at most, in practice)."""
        return await first_page(self._sdk.v1.invoice_payments.list_async, {
            "payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": limit})

    # -- customers --------------------------------------------------------------------------------
    async def create_customer(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.customers.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    # -- promotion codes and coupons --------------------------------------------------------------
    async def create_coupon(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.coupons.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    async def list_coupons(self) -> list[Answer]:
        return await every(self._sdk.v1.coupons.list_async, {"limit": 100})

    async def create_promotion_code(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.promotion_codes.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    async def retrieve_promotion_code(self, promotion_code_id: str) -> Answer:
        return answer(await self._sdk.v1.promotion_codes.retrieve_async(promotion_code_id))

    async def list_promotion_codes(self, params: Params) -> list[Answer]:
        """Every promotion code matching ``params``, page after page."""
        return await every(self._sdk.v1.promotion_codes.list_async, params)

    async def first_promotion_code(self, params: Params) -> Answer | None:
        """The first promotion code matching ``params`` (one request)."""
        found = await first_page(self._sdk.v1.promotion_codes.list_async, {**params, "limit": 1})
        return found[0] if found else None

    async def update_promotion_code(self, promotion_code_id: str, params: Params, *,
                                    idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.promotion_codes.update_async(
            promotion_code_id, params=sdk_params(params),
            options=keyed(idempotency_key)))
