"""``tally serve`` whose process dies after the webhook receiver has stored an event but before the answer leaves:
the first delivery of each event of the ``--die-on`` type makes the process ``os._exit`` at the moment the 200
would be sent (the inbox row and its job are committed by then). The event's id is written to ``--markers`` first,
so a restarted process answers that event's retry normally.

Why a wrapper here rather than a hook in Tally: the crash point is exactly "committed, not answered", which a
kill from outside cannot hit reliably, and production code keeps no test-only branch. The app inside is Tally's
own, built the way ``tally serve`` builds it.

    python -m tests.faults.crashing_receiver --port 8000 --die-on checkout.session.completed --markers DIR
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from tally.app import create_app
from tally.config import Settings
from tally.runtime import WEBHOOK_PATH, prepare

EXIT_CODE = 70


class DieBeforeAnswering:
    def __init__(self, app: Any, event_type: str, markers: Path) -> None:
        self.app, self.event_type, self.markers = app, event_type, markers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replayed = False

        async def receive_again() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = {}
        marker = self.markers / str(event.get("id", "none"))
        if event.get("type") != self.event_type or marker.exists():
            await self.app(scope, receive_again, send)
            return

        async def die_instead_of_answering(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                marker.write_text(event["type"])
                os._exit(EXIT_CODE)
            await send(message)

        await self.app(scope, receive_again, die_instead_of_answering)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--die-on", required=True, help="event type whose first delivery kills the process")
    parser.add_argument("--markers", type=Path, required=True, help="directory of event ids already died on")
    args = parser.parse_args()
    args.markers.mkdir(parents=True, exist_ok=True)
    runtime = prepare(Settings(), start_sandbox=False)
    app = create_app(runtime.services(run_worker=not args.no_worker))
    uvicorn.run(DieBeforeAnswering(app, args.die_on, args.markers), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
