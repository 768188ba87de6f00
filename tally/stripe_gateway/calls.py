"""What every group of named Stripe calls shares: the SDK client, and turning its answers into plain dicts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import stripe

Params = Mapping[str, Any]
Answer = dict[str, Any]


def sdk_params(params: Params) -> Any:
    """Tally's request parameters, as the SDK takes them. Tally builds them as plain dicts from its own records;
    the SDK declares one TypedDict per endpoint, which a dict built at run time cannot be shown to match (the
    return type is ``Any`` for that reason alone). Stripe validates them (and the sandbox's shape checks, in
    tests)."""
    return dict(params)


def keyed(idempotency_key: str | None) -> Any:
    """The request options carrying ``idempotency_key``; none (the SDK's own random key) for ``None``. ``Any``:
    the SDK declares its options type in a private module only (``stripe._request_options``)."""
    return {"idempotency_key": idempotency_key} if idempotency_key else None


def expanding(expand: Sequence[str]) -> Any:
    """The parameters of a retrieve that expands ``expand``; none when it expands nothing (``Any`` as for
    ``sdk_params``: each endpoint declares its own TypedDict)."""
    return {"expand": list(expand)} if expand else None


def answer(found: stripe.StripeObject) -> Answer:
    return found.to_dict()


async def first_page(list_call: Callable[..., Awaitable[Any]], params: Params) -> list[Answer]:
    """One page of a list (as many as ``params['limit']`` asks for)."""
    page = await list_call(params=sdk_params(params))
    return [item.to_dict() for item in page.data]


async def every_page(list_call: Callable[..., Awaitable[Any]], params: Params, *,
                     for_json: bool = False) -> AsyncIterator[Answer]:
    """Every item of a list, page after page, as they arrive."""
    page = await list_call(params=sdk_params(params))
    async for item in page.auto_paging_iter():
        yield item.to_dict(for_json=for_json)


async def every(list_call: Callable[..., Awaitable[Any]], params: Params) -> list[Answer]:
    return [item async for item in every_page(list_call, params)]


class StripeCalls:
    """Base of the call groups: the SDK client they all use (``StripeGateway`` sets it)."""

    _sdk: stripe.StripeClient
