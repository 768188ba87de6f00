"""What ``tally doctor`` does: ask the running Tally at BASE for its report (``/admin/health.json``: the
checks run there, with the Stripe account and secrets it is configured with) and probe BASE's routes from
here, as a frontend would."""

from __future__ import annotations

import time

import httpx
import jwt

from ..config import Settings
from .checks import Finding
from .frontend import ROUTES, Route, run_probes
from .runner import Report


class DoctorFailed(Exception):
    """Tally could not be examined at all (not answering, credentials refused)."""


def admin_credentials(settings: Settings) -> str | None:
    """The API key, or a short admin JWT signed with the same secret the server verifies (in sandbox mode,
    ``tally serve``'s development secret)."""
    if settings.api_key:
        return settings.api_key
    secret = settings.jwt_secret or (settings.dev_jwt_secret if settings.sandbox_mode else None)
    if secret is None:
        return None
    now = int(time.time())
    claims = {"sub": "tally-doctor", "role": "admin", "iat": now, "exp": now + 300}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, secret, algorithm="HS256")


async def examine(settings: Settings, base: str, *, go_live: bool, routes: list[Route],
                  origins: list[str] | None) -> Report:
    token = admin_credentials(settings)
    async with httpx.AsyncClient(base_url=base.rstrip("/"), timeout=60) as http:
        try:
            alive = await http.get("/healthz")
        except httpx.HTTPError as exc:
            raise DoctorFailed(f"Tally is not answering at {base} ({type(exc).__name__}). Start it with "
                               "`tally serve`, or pass --url with the address it listens on.") from None
        if alive.status_code != 200:
            raise DoctorFailed(f"{base}/healthz answered {alive.status_code}: is this Tally?")
        if token is None:
            raise DoctorFailed("No credentials to read /admin/health.json: set TALLY_API_KEY (as the server has "
                               "it) or TALLY_JWT_SECRET.")
        answer = await http.get("/admin/health.json", params={"go_live": go_live, "frontend": False},
                                headers={"Authorization": f"Bearer {token}"})
        if answer.status_code in (401, 403):
            raise DoctorFailed(f"{base} refused the doctor's credentials ({answer.status_code}): give this shell "
                               "the same TALLY_API_KEY (or TALLY_JWT_SECRET) as the server.")
        if answer.status_code != 200:
            raise DoctorFailed(f"{base}/admin/health.json answered {answer.status_code}: {answer.text[:300]}")
        report = Report.from_json(answer.json())
        configured = list(settings.cors_origins)
        report.frontend = await run_probes(http, routes=[*ROUTES, *routes], origins=origins,
                                           configured_origins=configured)
    report.url = base.rstrip("/")
    return report


def unreachable(base: str, message: str) -> Report:
    return Report(url=base, mode="unknown", checks=[Finding("reachable", "Tally answers", False, message,
                                                            "Start Tally, or pass the right --url.")])
