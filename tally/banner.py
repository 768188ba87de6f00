"""What `tally serve` prints when a person started it in a terminal: where everything is and how to get in, in
a dozen lines that stay above the log. Without a terminal it prints the plain ``tally: …`` notes instead
(process managers and tests read those)."""

from __future__ import annotations

from pathlib import Path

from .config import Settings

TEST_CARDS = ("4242 4242 4242 4242 pays", "4000 0000 0000 0002 is declined",
              "4000 0027 6000 3184 asks for 3-D Secure", "any future date, any CVC")


def banner(settings: Settings, *, stripe_api_base: str | None, generated_key: bool, worker: bool) -> str:
    url = settings.public_url.rstrip("/")
    rows = [
        ("Pages", f"{url}/  (pricing, sign-in, account)"),
        ("Dashboard", f"{url}/admin  sign in with {_key_hint(settings, generated_key)}"),
        ("API", f"{url}/docs  (OpenAPI at {url}/openapi.json)"),
        ("Emails", f"{url}/outbox" if not settings.smtp_url else "sent through TALLY_SMTP_URL"),
        ("Stripe", _stripe(settings, stripe_api_base)),
    ]
    if settings.sandbox_mode or not settings.live_mode:
        rows.append(("Test cards", "; ".join(TEST_CARDS)))
    rows.append(("Data", _data(settings)))
    if not worker:
        rows.append(("Worker", "not in this process (--no-worker): run `tally worker` beside it"))
    width = max(len(name) for name, _ in rows)
    lines = [f"Tally is running at {url}  (Ctrl+C stops it)", ""]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines) + "\n"


def _key_hint(settings: Settings, generated_key: bool) -> str:
    if generated_key and settings.api_key:
        return f"the key {settings.api_key}  (`tally admin-key` prints it)"
    if settings.api_key:
        return "TALLY_API_KEY"
    return "an admin JWT (set TALLY_API_KEY for a key)"


def _stripe(settings: Settings, api_base: str | None) -> str:
    if settings.sandbox_mode:
        return f"offline sandbox at {api_base}  (test mode: no account, no real money)"
    return f"Stripe API{' at ' + api_base if api_base else ''} ({'LIVE' if settings.live_mode else 'test'} mode)"


def _data(settings: Settings) -> str:
    folder = Path(settings.data_dir).resolve()
    if settings.database_url:
        return f"database from TALLY_DATABASE_URL; {folder} for the rest"
    return f"{folder}  (embedded PostgreSQL, sandbox state, keys)"
