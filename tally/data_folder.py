"""What Tally keeps in its data folder (``TALLY_DATA_DIR``, ``./.tally`` by default) beside the embedded
database, in sandbox mode: the sandbox endpoint's webhook secret and the operator's API key (generated once, so
restarts keep verifying and signing in), the port of the sandbox `tally serve` starts (so checkout and portal URLs
handed out before a restart still open after it), and the address of the sandbox while it runs (so that
`tally worker` and the other commands run beside `tally serve` use the same offline Stripe)."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from .config import Settings

WEBHOOK_SECRET_FILE = "sandbox_webhook_secret"
API_KEY_FILE = "api_key"
SANDBOX_PORT_FILE = "sandbox.port"
SANDBOX_URL_FILE = "sandbox.url"


def kept_secret(path: Path, prefix: str, *, create: bool = True) -> str | None:
    """The secret kept in ``path``; generated and kept (readable by its owner only) when missing, unless
    ``create`` is False (then None)."""
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = prefix + secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


def webhook_secret(settings: Settings, *, create: bool = True) -> str | None:
    """STRIPE_WEBHOOK_SECRET, else the sandbox endpoint's secret kept in the data folder."""
    return settings.stripe_webhook_secret or kept_secret(settings.data_dir / WEBHOOK_SECRET_FILE, "whsec_",
                                                         create=create)


def operator_api_key(settings: Settings, *, create: bool = True) -> str | None:
    """TALLY_API_KEY, else, in sandbox mode only, the key kept in the data folder: operator access (``/admin``,
    ``/metrics``, the admin API) out of the box. With a real Stripe key nothing is generated: the operator
    chooses the key."""
    if settings.api_key or not settings.sandbox_mode:
        return settings.api_key
    return kept_secret(settings.data_dir / API_KEY_FILE, "tally_sandbox_", create=create)


def kept_sandbox_port(settings: Settings) -> int | None:
    path = settings.data_dir / SANDBOX_PORT_FILE
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def keep_sandbox_port(settings: Settings, port: int) -> None:
    (settings.data_dir / SANDBOX_PORT_FILE).write_text(f"{port}\n")


def announce_sandbox(settings: Settings, url: str) -> None:
    (settings.data_dir / SANDBOX_URL_FILE).write_text(url)


def withdraw_sandbox(settings: Settings) -> None:
    (settings.data_dir / SANDBOX_URL_FILE).unlink(missing_ok=True)


class NoSandboxRunning(click.ClickException):
    """A ClickException so that every `tally` command that needs Stripe prints it as one plain line."""


def running_sandbox(settings: Settings) -> str:
    """The address of the sandbox `tally serve` runs on this data folder."""
    path = settings.data_dir / SANDBOX_URL_FILE
    if not path.exists():
        raise NoSandboxRunning(
            f"no Stripe key and no sandbox running for {settings.data_dir}: start `tally serve` first (it runs the "
            "offline Stripe sandbox and writes its address there), or set STRIPE_API_BASE (a sandbox you started "
            "with `tally sandbox`), or STRIPE_SECRET_KEY")
    return path.read_text().strip()
