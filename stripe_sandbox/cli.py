"""Command line of the sandbox (also reachable as ``tally sandbox``)."""

from __future__ import annotations

import argparse

from .config import SandboxConfig
from .server import serve_forever


def build_config(argv: list[str] | None = None) -> SandboxConfig:
    parser = argparse.ArgumentParser(prog="stripe_sandbox", description="An offline, stateful Stripe API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--public-url", help="base URL of hosted pages, if not http://HOST:PORT")
    parser.add_argument("--data", help="keep state in this SQLite file across restarts")
    parser.add_argument("--webhook-url", help="register a webhook endpoint for all events at start-up")
    parser.add_argument("--webhook-secret", help="signing secret (whsec_...) for --webhook-url")
    args = parser.parse_args(argv)
    config = SandboxConfig(host=args.host, port=args.port, public_url=args.public_url, data_path=args.data)
    if args.webhook_url:
        config.webhook_url = args.webhook_url
    if args.webhook_secret:
        config.webhook_secret = args.webhook_secret
    return config


def main(argv: list[str] | None = None) -> None:
    serve_forever(build_config(argv))
