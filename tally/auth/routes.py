"""``POST /dev/login``: a demo sign-in for sandbox mode (refused with a real Stripe key)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import SettingsDep
from ..errors import Forbidden
from .schemas import DevLoginRequest, TokenResponse
from .service import issue_dev_token

router = APIRouter(tags=["auth"])


@router.post("/dev/login", response_model=TokenResponse, responses={403: {"description": "Not in sandbox mode"}})
async def dev_login(body: DevLoginRequest, settings: SettingsDep) -> TokenResponse:
    if not settings.sandbox_mode:
        raise Forbidden("Demo sign-in exists only in sandbox mode; use your app's JWTs with a real Stripe key.")
    return TokenResponse(token=issue_dev_token(settings, body.user_id, body.email))
