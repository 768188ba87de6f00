"""What ``tally events ...`` does, outside the CLI module so that it stays importable and testable."""

from __future__ import annotations

from typing import Any

from . import service


async def replay_event(runtime: Any, event_id: str) -> str:
    services = runtime.services(run_worker=False, pool_size=1)
    try:
        async with services.db.transaction() as session:
            row = await service.replay(session, event_id)
            return row.status
    finally:
        await services.db.dispose()
