"""Run the sandbox: in the foreground (command line) or on a background thread (tests, ``tally serve``)."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time

import uvicorn

from .app import create_app
from .config import SandboxConfig
from .state import Sandbox


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class SandboxServer:
    """A sandbox on its own thread and event loop. ``port=0`` picks a free port.

    >>> with SandboxServer(SandboxConfig(port=0)) as server:
    ...     client = stripe.StripeClient("sk_test_x", base_addresses={"api": server.url})
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig(port=0)
        self._sock = _bind(self.config.host, self.config.port)
        self.config.port = self._sock.getsockname()[1]
        self.sandbox = Sandbox(self.config)
        self.app = create_app(sb=self.sandbox)
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._run, name="stripe-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Stripe sandbox did not start")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        # uvicorn's loop factory: uvloop when installed (uvicorn[standard]), about twice asyncio's throughput
        _run_server(self._server, self._sock)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)

    def call(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run ``fn(*args)`` on the server's loop thread (state is only touched there) and return its result."""
        loop = self._loop()
        future = asyncio.run_coroutine_threadsafe(_call(fn, *args), loop)
        return future.result(timeout=30)

    def _loop(self) -> asyncio.AbstractEventLoop:
        for server in self._server.servers:
            return server.get_loop()
        raise RuntimeError("sandbox not running")

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _call(fn, *args):  # type: ignore[no-untyped-def]
    return fn(*args)


def _run_server(server: uvicorn.Server, sock: socket.socket) -> None:
    server.run(sockets=[sock])


def startup_line(config: SandboxConfig) -> str:
    parts = [f"Stripe sandbox listening on {config.base_url}",
             f"API base {config.base_url} with any sk_test_ key",
             f"state in {config.data_path}" if config.data_path else "state in memory"]
    if config.webhook_url:
        parts.append(f"webhooks to {config.webhook_url}")
    return " | ".join(parts)


def serve_forever(config: SandboxConfig) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then stop cleanly (in-flight requests finish, the
    data file is closed)."""
    sock = _bind(config.host, config.port)
    config.port = sock.getsockname()[1]
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30,
                                           timeout_graceful_shutdown=5))
    print(startup_line(config), flush=True)
    # uvicorn shuts down on SIGINT/SIGTERM, then re-raises the signal through the previous handler: ours
    # turns it into a quiet exit with status 0 instead of a traceback or a death by signal.
    previous = signal.signal(signal.SIGTERM, _stop_quietly)
    try:
        _run_server(server, sock)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("Stripe sandbox stopped", flush=True)


class _Stopped(Exception):
    pass


def _stop_quietly(signum: int, frame: object) -> None:
    raise _Stopped()
