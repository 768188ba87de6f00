"""The Stripe sandbox in its own process, timing every API call at the sandbox itself: from the request
reaching its ASGI app to the last byte of the answer handed to the server. One line per call,
``<Idempotency-Key> <milliseconds>``, goes to ``--log``; bench/checkout.py subtracts it from what a
checkout took, so the overhead it reports is Tally's own.

    .venv/bin/python -m bench.timed_sandbox --port 12111 --log /tmp/stripe-times.log
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import uvicorn

from stripe_sandbox import SandboxConfig
from stripe_sandbox.app import create_app
from stripe_sandbox.state import Sandbox


def timed(app: Any, log: Any) -> Any:
    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        await app(scope, receive, send)
        elapsed = (time.perf_counter() - started) * 1000
        key = dict(scope["headers"]).get(b"idempotency-key", b"-").decode("latin-1")
        log.write(f"{key} {elapsed:.3f}\n")

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    config = SandboxConfig(port=args.port, webhook_url=None, webhook_secret=None)
    app = create_app(sb=Sandbox(config))
    with open(args.log, "a", buffering=1) as log:
        uvicorn.run(timed(app, log), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                    loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
