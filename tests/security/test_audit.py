"""``tally audit``: each P0 item passes on a production-like configuration and fails, with a reason, on the
misconfiguration it is there to catch; the command exits non-zero on any failure."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from typer.testing import CliRunner

from tally.cli import app as cli
from tally.config import Settings
from tally.pages.web import PageRoute
from tally.security import audit

PRODUCTION = {
    "STRIPE_SECRET_KEY": "sk_live_" + "a" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "b" * 32,
    "TALLY_JWT_SECRET": "j" * 48,
    "TALLY_API_KEY": "k" * 40,
    "TALLY_PUBLIC_URL": "https://billing.example.com",
    "TALLY_DATABASE_URL": "postgresql+psycopg://tally@db.internal/tally",
}


def checks(environ: dict[str, str] | None = None, **overrides: Any) -> dict[str, audit.Check]:
    """The audit of PRODUCTION with ``overrides`` (None removes a setting), read from ``environ``."""
    env = {k: v for k, v in {**PRODUCTION, **overrides}.items() if v is not None}
    return {c.name: c for c in audit.run(Settings(**env), env if environ is None else environ)}


def failed(result: dict[str, audit.Check]) -> dict[str, str]:
    return {name: c.detail for name, c in result.items() if not c.passed}


def test_a_production_configuration_passes_every_item() -> None:
    result = checks()
    assert len(result) == 7 and failed(result) == {}
    assert "live-mode key" in result["Live and test mode separated"].detail


def test_keys_must_come_from_the_environment_and_be_long_enough() -> None:
    from_file = {k: v for k, v in PRODUCTION.items() if k != "STRIPE_SECRET_KEY"}  # as if from .env
    assert "STRIPE_SECRET_KEY comes from a file" in failed(checks(environ=from_file))["Keys from the environment only"]
    assert "TALLY_JWT_SECRET is shorter" in failed(checks(TALLY_JWT_SECRET="short"))["Keys from the environment only"]
    assert "TALLY_API_KEY is shorter" in failed(checks(TALLY_API_KEY="abc"))["Keys from the environment only"]
    no_login = failed(checks(TALLY_JWT_SECRET=None))["Keys from the environment only"]
    assert "no user can sign in" in no_login
    sandbox = failed(checks(TALLY_JWT_SECRET=None, STRIPE_SECRET_KEY=None))["Keys from the environment only"]
    assert "public sandbox development secret" in sandbox
    assert "Keys from the environment only" not in failed(checks(TALLY_JWT_SECRET=None,
                                                                 TALLY_JWKS_URL="https://idp.example/jwks"))


def test_live_and_test_are_kept_apart() -> None:
    item = "Live and test mode separated"
    assert "LIVE key would be sent" in failed(checks(STRIPE_API_BASE="http://127.0.0.1:12111"))[item]
    assert item not in failed(checks(STRIPE_SECRET_KEY="sk_test_" + "a" * 24, STRIPE_API_BASE="http://127.0.0.1:1"))
    assert "not a Stripe secret" in failed(checks(STRIPE_SECRET_KEY="pk_live_" + "a" * 24))[item]
    restricted = checks(STRIPE_SECRET_KEY="rk_live_" + "a" * 24)[item]
    assert restricted.passed and "live-mode" in restricted.detail  # a restricted live key is live mode too


def test_the_webhook_secret_must_be_set() -> None:
    item = "Webhook signing secret set"
    assert "not set" in failed(checks(STRIPE_WEBHOOK_SECRET=None))[item]
    assert "whsec_" in failed(checks(STRIPE_WEBHOOK_SECRET="hunter2"))[item]
    rolling = checks(STRIPE_WEBHOOK_SECRET="whsec_old" + "x" * 20 + ",whsec_new" + "y" * 20)[item]
    assert rolling.passed and "two while rolling" in rolling.detail


def test_the_public_url_must_be_https() -> None:
    assert "https://" in failed(checks(TALLY_PUBLIC_URL="http://billing.example.com"))["HTTPS public URL"]


def test_rate_limits_must_be_on_and_their_redis_reachable() -> None:
    item = "Rate limits on"
    assert "off" in failed(checks(TALLY_RATE_LIMITS="false"))[item]
    assert "Redis does not answer" in failed(checks(TALLY_REDIS_URL="redis://127.0.0.1:1/0"))[item]
    assert "set TALLY_REDIS_URL" in checks()[item].detail


def test_rate_limits_in_a_reachable_redis_pass() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    result = checks(TALLY_REDIS_URL="redis://127.0.0.1:6379/0")["Rate limits on"]
    assert result.passed and "shared by every API node" in result.detail


def test_csrf_fails_when_a_page_form_lacks_the_token_check() -> None:
    settings = Settings(**PRODUCTION)
    app = audit.build_app(settings)
    assert audit.csrf_on(settings, PRODUCTION, app).passed

    async def unprotected_form() -> None:
        return None

    app.router.add_api_route("/unprotected", unprotected_form, methods=["POST"], route_class_override=PageRoute)
    result = audit.csrf_on(settings, PRODUCTION, app)
    assert not result.passed and "POST /unprotected" in result.detail


def test_idempotency_fails_when_spends_do_not_require_a_key() -> None:
    settings = Settings(**PRODUCTION)
    app = audit.build_app(settings)
    assert audit.idempotency_keys_used(settings, PRODUCTION, app).passed

    class LooseSpend(BaseModel):
        amount: int
        idempotency_key: str | None = None

    loose = FastAPI()
    loose.state.stripe = app.state.stripe

    @loose.post("/v1/credits/spend")
    async def spend(body: LooseSpend) -> None:
        return None

    result = audit.idempotency_keys_used(settings, PRODUCTION, loose)
    assert not result.passed and "does not require idempotency_key" in result.detail


def test_the_command_prints_the_checklist_and_exits_non_zero_on_a_failure() -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["audit"], env=PRODUCTION)
    assert good.exit_code == 0, good.output
    assert good.output.count("PASS") == 7 and "7 of 7 P0 items pass" in good.output
    bad = runner.invoke(cli, ["audit"], env={**PRODUCTION, "TALLY_PUBLIC_URL": "http://billing.example.com",
                                             "TALLY_RATE_LIMITS": "false"})
    assert bad.exit_code == 1
    assert "FAIL  HTTPS public URL" in bad.output and "2 FAIL" in bad.output
    for secret in (PRODUCTION["STRIPE_SECRET_KEY"], PRODUCTION["TALLY_JWT_SECRET"], PRODUCTION["TALLY_API_KEY"],
                   PRODUCTION["STRIPE_WEBHOOK_SECRET"]):
        assert secret not in good.output + bad.output  # the report names settings, never their values
