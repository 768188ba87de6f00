"""Named Stripe calls about the account itself: events, webhook endpoints, tax settings and rates."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .calls import Answer, Params, StripeCalls, answer, every, every_page, first_page, keyed, sdk_params


class AccountCalls(StripeCalls):
    # -- events -----------------------------------------------------------------------------------
    async def list_events(self, params: Params) -> list[Answer]:
        """One page of events (as many as ``params['limit']``), newest first, as JSON-ready dicts."""
        page = await self._sdk.v1.events.list_async(params=sdk_params(params))
        return [event.to_dict(for_json=True) for event in page.data]

    def every_event(self, params: Params) -> AsyncIterator[Answer]:
        """Every event matching ``params``, page after page as they arrive, as JSON-ready dicts (stored as is)."""
        return every_page(self._sdk.v1.events.list_async, params, for_json=True)

    async def retrieve_event(self, event_id: str) -> Answer:
        return (await self._sdk.v1.events.retrieve_async(event_id)).to_dict(for_json=True)

    # -- webhook endpoints ------------------------------------------------------------------------
    async def list_webhook_endpoints(self) -> list[Answer]:
        return await every(self._sdk.v1.webhook_endpoints.list_async, {"limit": 100})

    # -- tax --------------------------------------------------------------------------------------
    async def retrieve_tax_settings(self) -> Answer:
        return answer(await self._sdk.v1.tax.settings.retrieve_async())

    async def update_tax_settings(self, params: Params, *, idempotency_key: str | None) -> Answer:
        return answer(await self._sdk.v1.tax.settings.update_async(params=sdk_params(params),
                                                                  options=keyed(idempotency_key)))

    async def list_tax_rates(self, params: Params) -> list[Answer]:
        """One page of tax rates (as many as ``params['limit']``)."""
        return await first_page(self._sdk.v1.tax_rates.list_async, params)
