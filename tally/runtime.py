"""Assembling a running Tally: database (external or embedded), migrations, Stripe (real or the
offline sandbox started beside the service), and the webhook secret."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import click

from . import embedded_pg
from .app import Services
from .config import Settings
from .db import Database, resolve_database_url
from .migrate import upgrade
from .stripe_gateway import SANDBOX_KEY, make_client
from .webhooks.dispatch import load_handlers

WEBHOOK_PATH = "/v1/webhooks/stripe"


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    stripe_key: str
    stripe_api_base: str | None
    webhook_secrets: list[str]
    sandbox: object | None = None  # stripe_sandbox.SandboxServer when running offline
    notes: list[str] = field(default_factory=list)

    def services(self, *, run_worker: bool, pool_size: int = 10) -> Services:
        return Services(
            settings=self.settings,
            db=Database(self.database_url, pool_size=pool_size),
            stripe=make_client(self.stripe_key, self.stripe_api_base),
            webhook_secrets=self.webhook_secrets,
            run_worker=run_worker,
        )

    def stop(self) -> None:
        """Stop what ``prepare`` started: the sandbox (and its address file), and this process's hold on the
        embedded PostgreSQL (stopped if no other Tally process of the data folder holds it)."""
        if self.sandbox is not None:
            self.sandbox.stop()  # type: ignore[attr-defined]
            self.sandbox = None
            _sandbox_url_file(self.settings).unlink(missing_ok=True)
        if not self.settings.database_url:
            embedded_pg.release(self.settings.data_dir)


def _sandbox_url_file(settings: Settings) -> Path:
    """Where `tally serve` says which sandbox it started, so that `tally worker` and the other commands run
    beside it on the same data folder use the same offline Stripe."""
    return settings.data_dir / "sandbox.url"


class NoSandboxRunning(click.ClickException):
    """A ClickException so that every `tally` command that needs Stripe prints it as one plain line."""


def _running_sandbox(settings: Settings) -> str:
    path = _sandbox_url_file(settings)
    if not path.exists():
        raise NoSandboxRunning(
            f"no Stripe key and no sandbox running for {settings.data_dir}: start `tally serve` first (it runs the "
            "offline Stripe sandbox and writes its address there), or set STRIPE_API_BASE (a sandbox you started "
            "with `tally sandbox`), or STRIPE_SECRET_KEY")
    return path.read_text().strip()


def _persistent_secret(path: Path, *, create: bool = True) -> str | None:
    """The sandbox endpoint's signing secret, kept beside the data so restarts keep verifying (None when it
    does not exist and ``create`` is False: workers verify no webhooks)."""
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = "whsec_" + secrets.token_urlsafe(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def prepare(settings: Settings, *, start_sandbox: bool = True, migrate: bool = True,
            create_data: bool = True) -> Runtime:
    """Everything ``tally serve`` / ``tally worker`` need before the app starts. ``create_data=False``: for
    commands that work on existing data, which refuse to start a new embedded database (``NoTallyData``)."""
    load_handlers()  # a handler module that cannot be imported stops here, before anything is started
    database_url = resolve_database_url(settings, create=create_data)
    embedded = f"embedded PostgreSQL in {settings.data_dir / 'pg'}"
    notes = [f"database: {'external' if settings.database_url else embedded}"]
    if migrate:
        upgrade(database_url)
    if not settings.sandbox_mode:
        if not settings.stripe_webhook_secret:
            notes.append("warning: STRIPE_WEBHOOK_SECRET is not set; webhooks will be refused")
        secrets_ = [s for s in (settings.stripe_webhook_secret or "").split(",") if s]
        mode = "LIVE" if settings.live_mode else "test"
        notes.append(f"stripe: real Stripe API ({mode} mode)")
        return Runtime(settings, database_url, settings.stripe_secret_key or "", settings.stripe_api_base,
                       secrets_, notes=notes)
    secret = settings.stripe_webhook_secret or _persistent_secret(settings.data_dir / "sandbox_webhook_secret",
                                                                  create=create_data)
    sandbox = None
    api_base = settings.stripe_api_base
    if not start_sandbox and not api_base:
        api_base = _running_sandbox(settings)
    elif start_sandbox and not api_base:
        from stripe_sandbox import SandboxConfig, SandboxServer

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        sandbox = SandboxServer(SandboxConfig(
            port=settings.sandbox_port,
            data_path=str(settings.data_dir / "sandbox.sqlite"),
            webhook_url=settings.public_url.rstrip("/") + WEBHOOK_PATH,
            webhook_secret=secret,
        )).start()
        api_base = sandbox.url
        _sandbox_url_file(settings).write_text(api_base)
    notes.append(f"stripe: offline sandbox at {api_base} (test mode, no real money; no Stripe account needed)")
    return Runtime(settings, database_url, SANDBOX_KEY, api_base, [secret] if secret else [], sandbox=sandbox,
                   notes=notes)
