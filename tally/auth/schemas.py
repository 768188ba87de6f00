from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class DevLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=255)
    email: EmailStr | None = None


class TokenResponse(BaseModel):
    token: str
