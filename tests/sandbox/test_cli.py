"""``python -m stripe_sandbox`` and ``tally sandbox`` as real processes: start-up line, flags, graceful stop,
``--data`` restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


from tests.stripe_shapes import checked_client
from tests.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
PYTHON_M = [sys.executable, "-m", "stripe_sandbox"]
TALLY_SANDBOX = [str(Path(sys.executable).parent / "tally"), "sandbox"]  # the console script pip installed


@contextmanager
def sandbox_process(*args: str, env: dict[str, str] | None = None,
                    command: list[str] = PYTHON_M) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [*command, "--port", "0", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert found, f"no start-up line: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        yield process, found.group(1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _stop(process: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    process.send_signal(sig)
    out, err = process.communicate(timeout=15)
    return process.returncode, out, err


def test_serves_the_api_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    data = str(tmp_path / "state.sqlite")
    with WebhookReceiver(secret="whsec_cli_secret") as receiver:
        with sandbox_process("--data", data, "--webhook-url", receiver.url, "--webhook-secret", "whsec_cli_secret",
                             "--webhook-retry-delays", "0.1,0.2") as (process, url):
            client = checked_client(url, "sk_test_cli")
            customer = client.v1.customers.create(params={"email": "cli@example.com"})
            receiver.wait_for("customer.created")
            code, out, err = _stop(process, signal.SIGTERM)
            assert code == 0, err
            assert "Stripe sandbox stopped" in out and "Traceback" not in err

        with sandbox_process("--data", data) as (process, url):
            client = checked_client(url, "sk_test_cli")
            assert client.v1.customers.retrieve(customer.id).email == "cli@example.com"
            code, out, err = _stop(process, signal.SIGINT)
            assert code == 0 and "Traceback" not in err


def test_start_up_line_and_environment() -> None:
    with WebhookReceiver(secret="whsec_env") as receiver:
        env = {"STRIPE_SANDBOX_WEBHOOK_URL": receiver.url, "STRIPE_SANDBOX_WEBHOOK_SECRET": "whsec_env"}
        with sandbox_process(env=env) as (process, url):
            client = checked_client(url, "sk_test_cli")
            client.v1.products.create(params={"name": "from env"})
            receiver.wait_for("product.created")
            code, out, err = _stop(process, signal.SIGTERM)
            assert code == 0


def test_bad_flags_are_refused() -> None:
    done = subprocess.run([sys.executable, "-m", "stripe_sandbox", "--webhook-retry-delays", "soon"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--webhook-retry-delays" in done.stderr
    shown = subprocess.run([sys.executable, "-m", "stripe_sandbox", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=30)
    assert shown.returncode == 0 and "--data" in shown.stdout and "--webhook-url" in shown.stdout


def test_tally_sandbox_starts_answers_and_shows_its_flags(tmp_path: Path) -> None:
    with sandbox_process("--data", str(tmp_path / "state.sqlite"), command=TALLY_SANDBOX) as (process, url):
        client = checked_client(url, "sk_test_tally_cli")
        product = client.v1.products.create(params={"name": "via tally sandbox"})
        assert client.v1.products.retrieve(product.id).name == "via tally sandbox"
        code, out, err = _stop(process, signal.SIGTERM)
        assert code == 0 and "Traceback" not in err
    shown = subprocess.run([*TALLY_SANDBOX, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "usage: tally sandbox" in shown.stdout
    assert "--data" in shown.stdout and "--webhook-url" in shown.stdout and "--port" in shown.stdout
