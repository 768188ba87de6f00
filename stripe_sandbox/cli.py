"""Command line of the sandbox (also reachable as ``tally sandbox``)."""

from __future__ import annotations

import argparse

from .config import SandboxConfig
from .server import serve_forever


def build_config(argv: list[str] | None = None, prog: str = "python -m stripe_sandbox") -> SandboxConfig:
    parser = argparse.ArgumentParser(prog=prog, description="An offline, stateful Stripe API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--public-url", help="base URL of hosted pages, if not http://HOST:PORT")
    parser.add_argument("--data", help="keep state in this SQLite file across restarts")
    parser.add_argument("--webhook-url", help="register a webhook endpoint for all events at start-up")
    parser.add_argument("--webhook-secret", help="signing secret (whsec_...) for --webhook-url")
    parser.add_argument("--webhook-retry-delays", metavar="S,S,...",
                        help="seconds between delivery retries "
                             "(default 1,4,16; env STRIPE_SANDBOX_WEBHOOK_RETRY_DELAYS)")
    parser.add_argument("--webhook-timeout", type=float, help="seconds to wait for a webhook answer (default 10)")
    parser.add_argument("--settle-seconds", type=float,
                        help="delay before delayed payment methods settle (env STRIPE_SANDBOX_SETTLE_SECONDS)")
    args = parser.parse_args(argv)
    # A process of its own: the GC may be kept off stored objects (store.GcFreezer).
    config = SandboxConfig(host=args.host, port=args.port, public_url=args.public_url, data_path=args.data,
                           freeze_gc=True)
    if args.webhook_url:
        config.webhook_url = args.webhook_url
    if args.webhook_secret:
        config.webhook_secret = args.webhook_secret
    if args.webhook_retry_delays is not None:
        try:
            config.webhook_retry_delays = tuple(float(x) for x in args.webhook_retry_delays.split(",") if x.strip())
        except ValueError:
            parser.error("--webhook-retry-delays takes comma-separated seconds, e.g. 1,4,16")
    if args.webhook_timeout is not None:
        config.webhook_timeout = args.webhook_timeout
    if args.settle_seconds is not None:
        config.async_settle_seconds = args.settle_seconds
    return config


def main(argv: list[str] | None = None, prog: str = "python -m stripe_sandbox") -> None:
    serve_forever(build_config(argv, prog))
