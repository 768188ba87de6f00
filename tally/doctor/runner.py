"""Runs the checks, scores them out of 8, adds the frontend diagnostics and (``go_live``) the go-live
checklist, and renders the report as text or JSON."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .checks import CHECKS, Context, Finding
from .frontend import Route, run_probes

log = logging.getLogger("tally.doctor")
PASSING_SCORE = 5  # under this, `tally doctor` exits non-zero


@dataclass
class Report:
    url: str
    mode: str
    checks: list[Finding]
    frontend: list[Finding] = field(default_factory=list)
    go_live: list[Finding] | None = None

    @property
    def score(self) -> int:
        return sum(c.passed for c in self.checks if c.scored)

    @property
    def total(self) -> int:
        return sum(c.scored for c in self.checks)

    @property
    def healthy(self) -> bool:
        return self.score >= PASSING_SCORE

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "mode": self.mode, "score": self.score, "total": self.total,
                "healthy": self.healthy, "checks": [c.as_json() for c in self.checks],
                "frontend": [f.as_json() for f in self.frontend],
                "go_live": None if self.go_live is None else [g.as_json() for g in self.go_live]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        def findings(items: list[dict[str, Any]] | None) -> list[Finding]:
            return [Finding(**item) for item in items or []]

        return cls(url=data["url"], mode=data["mode"], checks=findings(data["checks"]),
                   frontend=findings(data.get("frontend")),
                   go_live=None if data.get("go_live") is None else findings(data["go_live"]))


async def run_checks(ctx: Context) -> list[Finding]:
    findings = []
    for check in CHECKS:  # in order: the keys check reads what the webhook probe found
        try:
            findings.append(await check(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            log.exception("doctor check %s failed", check.__name__)
            findings.append(Finding(check.__name__.removeprefix("check_"), check.__name__, False,
                                    f"The check itself failed: {exc!r}.", "See the server's log."))
    return findings


async def run_doctor(ctx: Context, *, go_live: bool = False, frontend: bool = True,
                     routes: list[Route] | None = None, origins: list[str] | None = None) -> Report:
    settings = ctx.settings
    mode = "sandbox" if settings.sandbox_mode else ("live" if settings.live_mode else "test")
    report = Report(url=ctx.base_url, mode=mode, checks=await run_checks(ctx))
    if frontend:
        from .frontend import ROUTES

        report.frontend = await run_probes(ctx.http, routes=[*ROUTES, *(routes or [])], origins=origins,
                                           configured_origins=settings.cors_origins)
    if go_live:
        report.go_live = go_live_checklist(ctx, report)
    return report


def go_live_checklist(ctx: Context, report: Report) -> list[Finding]:
    s = ctx.settings

    def item(title: str, passed: bool, reason: str, fix: str) -> Finding:
        return Finding("go_live", title, passed, reason, "" if passed else fix, scored=False)

    by_id = {c.id: c for c in report.checks}
    webhook = by_id.get("webhook")
    return [
        item("Live secret key", s.live_mode, "sk_live_/rk_live_ key set" if s.live_mode else
             f"{report.mode} mode", "Set STRIPE_SECRET_KEY to the live secret key."),
        item("Live webhook endpoint verified", s.live_mode and bool(webhook and webhook.passed),
             webhook.reason if webhook else "not checked",
             "Create the endpoint in live mode (the Dashboard's test and live endpoints are separate) and set "
             "its whsec_ secret."),
        item("HTTPS public URL", urlsplit(s.public_url).scheme == "https", s.public_url,
             "Set TALLY_PUBLIC_URL to the https:// address your users reach."),
        item("Production database", bool(s.database_url), "external PostgreSQL" if s.database_url else
             "embedded PostgreSQL in the data directory", "Set TALLY_DATABASE_URL to a managed, backed-up "
             "PostgreSQL."),
        item("Real sign-in", bool(s.jwt_secret or s.jwks_url), "TALLY_JWT_SECRET or TALLY_JWKS_URL set"
             if s.jwt_secret or s.jwks_url else "the public sandbox development secret",
             "Set TALLY_JWKS_URL (Supabase, Auth0, Clerk) or TALLY_JWT_SECRET (32+ random characters)."),
        item("API key for your backend", bool(s.api_key and len(s.api_key) >= 32), "TALLY_API_KEY set"
             if s.api_key else "not set", "Set TALLY_API_KEY to 32+ random characters (or leave your backend "
             "out of it)."),
        item("Emails sent", bool(s.smtp_url), "TALLY_SMTP_URL set" if s.smtp_url else "emails only go to /outbox",
             "Set TALLY_SMTP_URL."),
        item("Seller name on invoices", s.seller_name != "Tally Demo", s.seller_name,
             "Set TALLY_SELLER_NAME to your legal business name."),
        item("Health score 8/8", report.score == report.total, f"{report.score}/{report.total}",
             "Fix the failing checks above."),
        item("Test purchase end to end", False, "cannot be checked from here",
             "Buy the smallest pack with a real card in live mode, see the credits, then refund it in the "
             "Dashboard and see them clawed back."),
    ]


def format_report(report: Report) -> str:
    lines = [f"Tally at {report.url} ({report.mode} mode)", ""]
    for c in report.checks:
        lines.append(f"{'PASS' if c.passed else 'FAIL'}  {c.title}")
        lines.append(f"      {c.reason}")
        if not c.passed and c.fix:
            lines.append(f"      fix: {c.fix}")
    lines += ["", f"Score: {report.score}/{report.total}" + ("" if report.healthy else
                                                             f" (under {PASSING_SCORE}: not healthy)")]
    lines += _frontend_lines(report.frontend) + _go_live_lines(report.go_live)
    lines.append(f"\nchecked at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    return "\n".join(lines)


def _frontend_lines(findings: list[Finding]) -> list[str]:
    if not findings:
        return []
    problems = [f for f in findings if not f.passed]
    lines = ["", f"Frontend diagnostics ({len(problems)} problem{'s' if len(problems) != 1 else ''}):"]
    for f in findings:
        lines.append(f"  {'ok ' if f.passed else 'BAD'}  {f.title}: {f.reason}")
        if not f.passed and f.fix:
            lines.append(f"       fix: {f.fix}")
    return lines


def _go_live_lines(items: list[Finding] | None) -> list[str]:
    if items is None:
        return []
    lines = ["", f"Go-live checklist ({sum(g.passed for g in items)}/{len(items)} done):"]
    for g in items:
        lines.append(f"  [{'x' if g.passed else ' '}] {g.title}: {g.reason}")
        if not g.passed and g.fix:
            lines.append(f"        {g.fix}")
    return lines
