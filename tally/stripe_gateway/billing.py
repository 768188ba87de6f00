"""Named Stripe calls for subscriptions: subscriptions and their schedules, invoices, prices and products,
the billing portal, test clocks. Mutating calls take ``idempotency_key`` as a required keyword (``payments``)."""

from __future__ import annotations

from collections.abc import Sequence

from .calls import Answer, Params, StripeCalls, answer, every, expanding, first_page, keyed, sdk_params


class BillingCalls(StripeCalls):
    # -- subscriptions ----------------------------------------------------------------------------
    async def retrieve_subscription(self, subscription_id: str) -> Answer:
        return answer(await self._sdk.v1.subscriptions.retrieve_async(subscription_id))

    async def update_subscription(self, subscription_id: str, params: Params, *,
                                  idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.subscriptions.update_async(
            subscription_id, params=sdk_params(params), options=keyed(idempotency_key)))

    async def cancel_subscription(self, subscription_id: str, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.subscriptions.cancel_async(subscription_id,
                                                                   options=keyed(idempotency_key)))

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.subscriptions.resume_async(subscription_id,
                                                                   options=keyed(idempotency_key)))

    async def list_subscriptions(self, params: Params) -> list[Answer]:
        """One page of subscriptions (as many as ``params['limit']``)."""
        return await first_page(self._sdk.v1.subscriptions.list_async, params)

    # -- subscription schedules -------------------------------------------------------------------
    async def retrieve_subscription_schedule(self, schedule_id: str) -> Answer:
        return answer(await self._sdk.v1.subscription_schedules.retrieve_async(schedule_id))

    async def create_subscription_schedule(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.subscription_schedules.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    async def update_subscription_schedule(self, schedule_id: str, params: Params, *,
                                           idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.subscription_schedules.update_async(
            schedule_id, params=sdk_params(params), options=keyed(idempotency_key)))

    async def release_subscription_schedule(self, schedule_id: str, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.subscription_schedules.release_async(
            schedule_id, options=keyed(idempotency_key)))

    # -- invoices ---------------------------------------------------------------------------------
    async def retrieve_invoice(self, invoice_id: str, *, expand: Sequence[str] = ()) -> Answer:
        return answer(await self._sdk.v1.invoices.retrieve_async(invoice_id, params=expanding(expand)))

    async def list_invoice_lines(self, invoice_id: str) -> list[Answer]:
        """Every line of the invoice, page after page."""
        page = await self._sdk.v1.invoices.line_items.list_async(invoice_id, params={"limit": 100})
        return [line.to_dict() async for line in page.auto_paging_iter()]

    async def list_invoices(self, params: Params) -> list[Answer]:
        return await every(self._sdk.v1.invoices.list_async, params)

    # -- prices and products ----------------------------------------------------------------------
    async def retrieve_price(self, price_id: str) -> Answer:
        return answer(await self._sdk.v1.prices.retrieve_async(price_id))

    async def find_price(self, lookup_key: str) -> Answer | None:
        """The price ``lookup_key`` points at now, if any."""
        found = await first_page(self._sdk.v1.prices.list_async, {"lookup_keys": [lookup_key], "limit": 1})
        return found[0] if found else None

    async def create_price(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.prices.create_async(params=sdk_params(params),
                                                            options=keyed(idempotency_key)))

    async def update_price(self, price_id: str, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.prices.update_async(price_id, params=sdk_params(params),
                                                            options=keyed(idempotency_key)))

    async def retrieve_product(self, product_id: str) -> Answer:
        return answer(await self._sdk.v1.products.retrieve_async(product_id))

    async def create_product(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.products.create_async(params=sdk_params(params),
                                                              options=keyed(idempotency_key)))

    async def update_product(self, product_id: str, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.products.update_async(product_id, params=sdk_params(params),
                                                              options=keyed(idempotency_key)))

    # -- billing portal ---------------------------------------------------------------------------
    async def list_portal_configurations(self) -> list[Answer]:
        """Every active billing portal configuration, page after page."""
        return await every(self._sdk.v1.billing_portal.configurations.list_async, {"active": True, "limit": 100})

    async def create_portal_configuration(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.billing_portal.configurations.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    async def update_portal_configuration(self, configuration_id: str, params: Params, *,
                                          idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.billing_portal.configurations.update_async(
            configuration_id, params=sdk_params(params), options=keyed(idempotency_key)))

    async def create_portal_session(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.billing_portal.sessions.create_async(
            params=sdk_params(params), options=keyed(idempotency_key)))

    # -- test clocks ------------------------------------------------------------------------------
    async def retrieve_test_clock(self, clock_id: str) -> Answer:
        return answer(await self._sdk.v1.test_helpers.test_clocks.retrieve_async(clock_id))
