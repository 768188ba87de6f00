"""How the credits API's hot routes (spend, hold, capture, release) are called without FastAPI's dependency
solving and validation (``tally.fast_route``); ``tally.ledger.routes`` declares them with these route classes.

A spend (or a hold, or a capture) is one statement shared with its neighbours (``tally.ledger.group_commit``);
what remained was the HTTP layer's Python, about a fifth of it in FastAPI's dependency solving and validation
(``bench/spend.py --extras`` measures both ways). Each call gives the route's own endpoint the inputs FastAPI
would give it: the caller from ``tally.auth.deps.authenticate``, the body validated by the same model, the hold
id validated as the route declares it. Only the well-formed request is called here: anything FastAPI would
refuse (no JSON content type, a body that does not validate, no valid credentials, a malformed hold id) is handed
to FastAPI (``HandToFastAPI``), so every error is FastAPI's own answer.
"""

from __future__ import annotations

from typing import Any

import pydantic

from ..auth.deps import authenticate
from ..auth.service import Principal
from ..errors import TallyError
from ..fast_route import FastCall, HandToFastAPI, fast_route
from .schemas import CaptureIn, HoldIn, SpendIn

_JSON = b"application/json"


async def _caller(call: FastCall) -> Principal:
    content_type = call.request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower().encode() != _JSON:
        raise HandToFastAPI
    try:
        return await authenticate(call.request)
    except TallyError:
        raise HandToFastAPI from None  # FastAPI's own 401/403, with its headers


def _model(model: type[pydantic.BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except pydantic.ValidationError:
        raise HandToFastAPI from None


async def _spend(call: FastCall) -> Any:
    principal = await _caller(call)
    return await call.endpoint(_model(SpendIn, call.body), principal, call.request)


async def _hold(call: FastCall) -> Any:
    principal = await _caller(call)
    return await call.endpoint(_model(HoldIn, call.body), principal, call.request, call.response)


async def _capture(call: FastCall) -> Any:
    hold_id = call.path_param("hold_id")
    principal = await _caller(call)
    body = _model(CaptureIn, call.body) if call.body.strip() else None
    return await call.endpoint(hold_id, principal, call.request, body)


async def _release(call: FastCall) -> Any:
    hold_id = call.path_param("hold_id")
    principal = await _caller(call)
    return await call.endpoint(hold_id, principal, call.request)


SpendRoute = fast_route(_spend, name="SpendRoute")
HoldRoute = fast_route(_hold, name="HoldRoute")
CaptureRoute = fast_route(_capture, name="CaptureRoute")
ReleaseRoute = fast_route(_release, name="ReleaseRoute")
