"""Settings from the environment (and a ``.env`` file), one object passed to whoever needs it."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from typing import Annotated, Literal

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CATALOG = Path(__file__).parent / "catalog" / "default_catalog.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(None, alias="TALLY_DATABASE_URL")
    data_dir: Path = Field(Path(".tally"), alias="TALLY_DATA_DIR")
    stripe_secret_key: str | None = Field(None, alias="STRIPE_SECRET_KEY")
    stripe_webhook_secret: str | None = Field(None, alias="STRIPE_WEBHOOK_SECRET")
    stripe_api_base: str | None = Field(None, alias="STRIPE_API_BASE")
    jwt_secret: str | None = Field(None, alias="TALLY_JWT_SECRET")
    jwks_url: str | None = Field(None, alias="TALLY_JWKS_URL")
    jwt_audience: str | None = Field(None, alias="TALLY_JWT_AUDIENCE")
    api_key: str | None = Field(None, alias="TALLY_API_KEY")
    public_url: str = Field("http://127.0.0.1:8000", alias="TALLY_PUBLIC_URL")
    catalog_path: Path = Field(DEFAULT_CATALOG, alias="TALLY_CATALOG")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="TALLY_CORS_ORIGINS")
    compat_routes: bool = Field(True, alias="TALLY_COMPAT_ROUTES")
    max_body_bytes: int = Field(64 * 1024, alias="TALLY_MAX_BODY_BYTES")
    seller_name: str = Field("Tally Demo", alias="TALLY_SELLER_NAME")
    # Where operator notices go (a new dispute); sandbox mode: operator@localhost, caught on /outbox.
    operator_email: str | None = Field(None, alias="TALLY_OPERATOR_EMAIL")
    # Checkout lets buyers type a promotion code (Stripe's recommended default); `tally promo` makes codes.
    allow_promotion_codes: bool = Field(True, alias="TALLY_PROMOTION_CODES")
    # Tax (tally.tax): automatic = Stripe Tax (the default in sandbox mode, where `tally serve` also gives the
    # sandbox a head office in TALLY_TAX_HEAD_OFFICE); off = no tax. Unset with a real key: off.
    tax: Literal["automatic", "off"] | None = Field(None, alias="TALLY_TAX")
    tax_head_office: str = Field("DE", min_length=2, max_length=2, alias="TALLY_TAX_HEAD_OFFICE")
    # Port of the Stripe sandbox started beside `tally serve` when no Stripe key is set (0: any free port).
    sandbox_port: int = Field(0, alias="TALLY_SANDBOX_PORT")
    worker_concurrency: int = Field(8, alias="TALLY_WORKER_CONCURRENCY")
    webhook_max_attempts: int = Field(6, alias="TALLY_WEBHOOK_MAX_ATTEMPTS")
    # Subscriptions and email (tally.subscriptions, tally.email): no SMTP URL → emails go to the /outbox page.
    smtp_url: str | None = Field(None, alias="TALLY_SMTP_URL")
    plans_path: Path = Field(Path(__file__).parent / "subscriptions" / "default_plans.toml", alias="TALLY_PLANS")
    dunning_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [0, 3, 5, 7],
                                                         alias="TALLY_DUNNING_DAYS")
    # Reconciliation with Stripe (tally.reconcile): the worker's `tally sync` every N minutes; 0 turns it off.
    sync_every_minutes: int = Field(5, alias="TALLY_SYNC_EVERY_MINUTES")
    # Events and objects younger than this are left to their webhooks (Stripe's first retries come within it).
    sync_grace_seconds: int = Field(600, ge=0, alias="TALLY_SYNC_GRACE_SECONDS")
    # Operations (tally.observability, tally.admin): /metrics bearer token (else the API key), JSON logs.
    metrics_token: str | None = Field(None, alias="TALLY_METRICS_TOKEN")
    # auto: readable lines on a terminal, JSON otherwise | json | console | plain (leave logging as it is)
    log_format: Literal["auto", "json", "console", "plain"] = Field("auto", alias="TALLY_LOG_FORMAT")
    log_level: str = Field("INFO", alias="TALLY_LOG_LEVEL")
    # Rate limits (tally.security): every mutating route per user and per client IP, login per IP; "N/period"
    # strings of the `limits` library, several joined by ";". Shared by all API nodes through TALLY_REDIS_URL.
    rate_limits: bool = Field(True, alias="TALLY_RATE_LIMITS")
    redis_url: str | None = Field(None, alias="TALLY_REDIS_URL")
    rate_limit_user: str = Field("120/minute", alias="TALLY_RATE_LIMIT_USER")
    rate_limit_ip: str = Field("300/minute", alias="TALLY_RATE_LIMIT_IP")
    rate_limit_api_key: str = Field("6000/minute", alias="TALLY_RATE_LIMIT_API_KEY")
    rate_limit_login: str = Field("10/minute", alias="TALLY_RATE_LIMIT_LOGIN")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("dunning_days", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        if isinstance(value, str):
            return sorted({int(v) for v in value.split(",") if v.strip()})
        return value

    @field_validator("rate_limit_user", "rate_limit_ip", "rate_limit_api_key", "rate_limit_login")
    @classmethod
    def _parse_limits(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # "abc" → ValueError at start-up, not on the first request
        return value

    @property
    def sandbox_mode(self) -> bool:
        """No Stripe key: Tally runs against the offline sandbox it starts itself."""
        return not self.stripe_secret_key

    @property
    def operator_email_address(self) -> str | None:
        return self.operator_email or ("operator@localhost" if self.sandbox_mode else None)

    @property
    def tax_mode(self) -> str:
        """``automatic`` or ``off``: TALLY_TAX, else automatic in sandbox mode and off with a real key."""
        return self.tax or ("automatic" if self.sandbox_mode else "off")

    @property
    def live_mode(self) -> bool:
        return bool(self.stripe_secret_key and self.stripe_secret_key.startswith(("sk_live_", "rk_live_")))

    @cached_property
    def dev_jwt_secret(self) -> str:
        """Signing secret for sandbox-mode demo logins when no TALLY_JWT_SECRET is set."""
        return self.jwt_secret or "tally-sandbox-insecure-dev-secret-change-me"
