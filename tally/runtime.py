"""Assembling a running Tally: database (external or embedded), migrations, Stripe (real or the
offline sandbox started beside the service), and the webhook secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import data_folder, embedded_pg
from .services import Services
from .config import Settings
from .db import Database, resolve_database_url
from .errors import StartupError
from .migrate import upgrade
from .stripe_gateway import SANDBOX_KEY, make_client
from .webhooks.dispatch import load_handlers

if TYPE_CHECKING:  # imported when started: a real Stripe key never loads the sandbox
    from stripe_sandbox import SandboxServer

WEBHOOK_PATH = "/v1/webhooks/stripe"


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    stripe_key: str
    stripe_api_base: str | None
    webhook_secrets: list[str]
    sandbox: SandboxServer | None = None  # when running offline
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
            self.sandbox.stop()
            self.sandbox = None
            data_folder.withdraw_sandbox(self.settings)
        if not self.settings.database_url:
            embedded_pg.release(self.settings.data_dir)


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
    settings.api_key = data_folder.operator_api_key(settings, create=create_data)
    if not settings.sandbox_mode:
        if not settings.stripe_webhook_secret:
            notes.append("warning: STRIPE_WEBHOOK_SECRET is not set; webhooks will be refused")
        secrets_ = [s for s in (settings.stripe_webhook_secret or "").split(",") if s]
        mode = "LIVE" if settings.live_mode else "test"
        notes.append(f"stripe: real Stripe API ({mode} mode)")
        return Runtime(settings, database_url, settings.stripe_secret_key or "", settings.stripe_api_base,
                       secrets_, notes=notes)
    secret = data_folder.webhook_secret(settings, create=create_data)
    sandbox = None
    api_base = settings.stripe_api_base
    if not start_sandbox and not api_base:
        api_base = data_folder.running_sandbox(settings)
    elif start_sandbox and not api_base:
        sandbox = _start_sandbox(settings, secret)
        api_base = sandbox.url
    notes.append(f"stripe: offline sandbox at {api_base} (test mode, no real money; no Stripe account needed)")
    return Runtime(settings, database_url, SANDBOX_KEY, api_base, [secret] if secret else [], sandbox=sandbox,
                   notes=notes)


def _start_sandbox(settings: Settings, webhook_secret: str | None) -> SandboxServer:
    """The sandbox beside `tally serve`, on TALLY_SANDBOX_PORT, else on the port it had last time (a new one
    only if another program took it), its state in the data folder."""
    from stripe_sandbox import SandboxConfig, SandboxServer

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    wanted = settings.sandbox_port or data_folder.kept_sandbox_port(settings)
    ports = [settings.sandbox_port] if settings.sandbox_port else [wanted, 0] if wanted else [0]
    for port in ports:
        config = SandboxConfig(port=port, data_path=str(settings.data_dir / "sandbox.sqlite"),
                               webhook_url=settings.public_url.rstrip("/") + WEBHOOK_PATH,
                               webhook_secret=webhook_secret)
        try:
            server = SandboxServer(config)
        except OSError as exc:
            if port == ports[-1]:
                raise StartupError(f"the sandbox cannot listen on port {port} (TALLY_SANDBOX_PORT): "
                                   f"{exc.strerror}; choose another port, or 0 for any free one") from exc
            continue
        server.start()
        data_folder.keep_sandbox_port(settings, server.config.port)
        data_folder.announce_sandbox(settings, server.url)
        return server
    raise AssertionError("unreachable: the last port either binds or raises")
