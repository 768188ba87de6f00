"""`tally serve` in a terminal (a pseudo-terminal here, as a person's shell gives it): a banner with where everything
is and how to sign in, then one readable line per request, processed webhook and error, with procrastinate's
periodic no-op jobs kept out; JSON lines when stderr is not a terminal or TALLY_LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tally.observability.logging import RoutineJobs, configure_logging, log_format, quiet_periodic_tasks
from tests.integration.purchase_flow import VISA
from tests.served_tally import TALLY, env_for, served
from tests.tally_harness import free_port
from tests.waiting import poll

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Terminal:
    """A process on a pseudo-terminal (stdout and stderr both a TTY); ``screen()`` is what it printed so far."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the command
            os.chdir(cwd)
            os.execve(args[0], args, env)
        self._chunks: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def screen(self) -> str:
        return ANSI.sub("", b"".join(self._chunks).decode(errors="replace")).replace("\r\n", "\n")

    def wait_for(self, text: str, timeout: float = 120) -> None:
        poll(lambda: text in self.screen(), timeout=timeout, every=0.1, what=f"{text!r} on the terminal")

    def stop(self) -> int:
        os.kill(self.pid, signal.SIGINT)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_on_a_terminal_tally_serve_prints_a_banner_then_a_line_per_request_and_webhook(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    terminal = Terminal([str(TALLY), "serve", "--port", str(port)], tmp_path, env_for(tmp_path))
    try:
        terminal.wait_for("Tally is running at")
        poll(lambda: _answers(url), timeout=60, every=0.2, what="tally serve to answer")
        banner = terminal.screen()
        key = (tmp_path / "data" / "api_key").read_text().strip()
        sandbox = (tmp_path / "data" / "sandbox.url").read_text().strip()
        for shown in (f"{url}/admin", key, f"{url}/docs", sandbox, "4242 4242 4242 4242",
                      str((tmp_path / "data").resolve())):
            assert shown in banner, f"{shown!r} is missing from the banner:\n{banner}"

        httpx.get(f"{url}/pricing", timeout=30)
        httpx.get(f"{url}/no-such-page", timeout=30)
        terminal.wait_for("GET /pricing  200")
        terminal.wait_for("GET /no-such-page  404")

        token = httpx.post(f"{url}/dev/login", json={"user_id": "tty", "email": "tty@example.com"}).json()["token"]
        order = httpx.post(f"{url}/v1/checkout", json={"pack_id": "starter"}, timeout=30,
                           headers={"Authorization": f"Bearer {token}"}).json()
        # Tax is on in sandbox mode, so the hosted form needs the billing country, as Stripe's does.
        paid = httpx.post(f"{sandbox}/c/pay/{order['session_id']}", timeout=30, data={
            "email": "tty@example.com", "cardNumber": VISA, "cardExpiry": "12 / 34", "cardCvc": "123",
            "billingName": "Ada Lovelace", "country": "US"})
        assert paid.status_code < 400, paid.text
        terminal.wait_for("webhook checkout.session.completed")
        screen = terminal.screen()
        assert re.search(r"\d\d:\d\d:\d\d  webhook checkout\.session\.completed evt_\w+ processed", screen), screen
        assert "{" not in screen.split("Data", 1)[1], "no JSON lines on a terminal"
        assert "procrastinate" not in screen and "POST /v1/webhooks/stripe  200" not in screen
    finally:
        code = terminal.stop()
    assert code == 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_without_a_terminal_the_lines_are_json(tmp_path: Path) -> None:
    assert log_format("auto") == "json"  # pytest's stderr is not a terminal
    with served(tmp_path) as tally:  # its output is a pipe, as under a process manager
        httpx.get(f"{tally.url}/pricing", timeout=30)
        poll(lambda: '"path":"/pricing"' in tally.printed(), timeout=30, every=0.1, what="the request's line")
        line = next(line for line in tally.printed().splitlines() if '"path":"/pricing"' in line)
        assert json.loads(line)["status"] == 200
        assert "Tally is running" not in tally.printed(), "no banner without a terminal"


def test_tally_log_format_json_is_json_even_on_a_terminal(tmp_path: Path) -> None:
    port = free_port()
    env = {**env_for(tmp_path), "TALLY_LOG_FORMAT": "json"}
    terminal = Terminal([str(TALLY), "serve", "--port", str(port)], tmp_path, env)
    try:
        poll(lambda: _answers(f"http://127.0.0.1:{port}"), timeout=120, every=0.2, what="tally serve to answer")
        httpx.get(f"http://127.0.0.1:{port}/pricing", timeout=30)
        terminal.wait_for('"path":"/pricing"')
        line = next(line for line in terminal.screen().splitlines() if '"path":"/pricing"' in line)
        assert json.loads(line)["status"] == 200
    finally:
        assert terminal.stop() == 0


def test_periodic_jobs_that_ran_are_debug_lines() -> None:
    quiet_periodic_tasks({"webhooks:sweep"})
    routine = logging.LogRecord("procrastinate.worker", logging.INFO, __file__, 1, "Job ended", None, None)
    routine.action, routine.job = "job_success", {"task_name": "webhooks:sweep"}
    other = logging.LogRecord("procrastinate.worker", logging.INFO, __file__, 1, "Job ended", None, None)
    other.action, other.job = "job_success", {"task_name": "email:send_one"}
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        assert not RoutineJobs().filter(routine) and RoutineJobs().filter(other)
        root.setLevel(logging.DEBUG)
        assert RoutineJobs().filter(routine) and routine.levelno == logging.DEBUG
    finally:
        root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_an_error_is_one_readable_line_without_secrets() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, fmt="console")
    try:
        raise ValueError("the card was declined")
    except ValueError:
        logging.getLogger("tally.orders").exception("fulfilment failed for key sk_test_abcdef123456")
    logging.getLogger("tally.worker").warning("job worker stopped; starting it again in 1 s")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d  ERROR tally\.orders  fulfilment failed for key \[redacted\]  "
                        r"\(ValueError: the card was declined\)", lines[0]), lines[0]
    assert re.fullmatch(r"\d\d:\d\d:\d\d  WARNING tally\.worker  job worker stopped; starting it again in 1 s",
                        lines[1]), lines[1]
