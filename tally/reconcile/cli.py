"""What ``tally sync`` does, outside the CLI module so that it stays importable and testable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..stripe_gateway import close_client
from ..worker import make_job_app
from . import service


async def run_sync(runtime: Any, *, since: int | None = None) -> service.SyncReport:
    services = runtime.services(run_worker=False, pool_size=2)
    jobs = make_job_app(services.db.url, services.settings)
    await jobs.open_async()
    try:
        return await service.sync(services.db, jobs, services.stripe, services.settings, since=since)
    finally:
        await jobs.close_async()
        await services.db.dispose()
        await close_client(services.stripe)


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_report(report: service.SyncReport) -> str:
    lines = [f"tally sync: Stripe events from {_when(report.since)} to {_when(report.until)}: "
             f"{report.events_listed} listed, {len(report.events_stored)} had never arrived"
             + (" (now in the inbox, queued for the worker)" if report.events_stored else "")]
    for event_id in report.events_stored[:50]:
        lines.append(f"  stored {event_id}")
    checked = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.checked.items())
    lines.append(f"tally sync: compared with the ledger since {_when(report.objects_since)}: {checked}")
    if report.repaired:
        lines.append(f"tally sync: repaired {len(report.repaired)}:")
        lines += [f"  {r.kind} {r.record} ({r.stripe_id}): {r.detail}" for r in report.repaired]
    else:
        lines.append("tally sync: nothing to repair: every paid order and invoice is in the ledger")
    lines += [f"  skipped: {s}" for s in report.skipped]
    lines += [f"tally sync: warning: {w}" for w in report.warnings]
    lines.append(f"tally sync: next run starts after {_when(report.cursor)}")
    return "\n".join(lines)
