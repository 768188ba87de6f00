"""`tally` commands fail as a person needs: a command that reads existing data, run where there is none, says so
in one line and exits 2 having created nothing; a database out of reach, one without tables, a bad setting,
Stripe out of reach and a handler module that cannot be imported are each one line with the fix, never a
traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tally.webhooks.dispatch import HandlerModuleError
from tests.served_tally import TALLY
from tests.tally_harness import fresh_database, free_port

ROOT = Path(__file__).resolve().parents[2]


def tally(folder: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``tally *args`` run in ``folder`` with no Tally or Stripe setting but ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
    return subprocess.run([str(TALLY), *args], cwd=folder, env={**env, **settings}, capture_output=True,
                          text=True, timeout=120)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    said = done.stderr.strip()
    assert "Traceback" not in done.stdout + done.stderr
    assert len(said.splitlines()) == 1, said
    return said


@pytest.mark.parametrize("command", [["ledger", "check"], ["events", "replay", "evt_1"], ["worker"]],
                         ids=lambda c: " ".join(c))
def test_a_command_that_reads_data_says_there_is_none_here_and_creates_nothing(tmp_path: Path,
                                                                                 command: list[str]) -> None:
    done = tally(tmp_path, *command)
    assert done.returncode == 2
    said = one_line(done)
    assert f"no Tally data in {tmp_path / '.tally'}" in said and "TALLY_DATA_DIR" in said
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    done = tally(tmp_path, "ledger", "check", TALLY_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert done.returncode == 1
    said = one_line(done)
    assert "cannot connect to the database" in said and "TALLY_DATABASE_URL" in said


def test_a_database_without_tables_says_to_migrate(tmp_path: Path) -> None:
    with fresh_database(migrated=False) as url:
        done = tally(tmp_path, "ledger", "check", TALLY_DATABASE_URL=url)
    assert done.returncode == 1
    assert "run `tally migrate`" in one_line(done)


def test_a_bad_setting_names_the_variable(tmp_path: Path) -> None:
    done = tally(tmp_path, "ledger", "check", TALLY_MAX_BODY_BYTES="lots")
    assert done.returncode == 1
    said = one_line(done)
    assert "bad setting: TALLY_MAX_BODY_BYTES='lots'" in said
    assert list(tmp_path.iterdir()) == []


def test_stripe_out_of_reach_is_one_line(tmp_path: Path, database_url: str) -> None:
    done = tally(tmp_path, "sync", TALLY_DATABASE_URL=database_url, STRIPE_SECRET_KEY="sk_test_unreachable",
                 STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "unavailable" in one_line(done)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]], ids=["serve", "worker"])
def test_a_handler_module_that_cannot_be_imported_stops_the_start(tmp_path: Path, command: list[str]) -> None:
    done = tally(tmp_path, *command, TALLY_HANDLER_MODULES="tally_plugins.typo", TALLY_DATA_DIR=str(tmp_path))
    assert done.returncode == 1
    said = one_line(done)
    assert "cannot import the handler module 'tally_plugins.typo' named in TALLY_HANDLER_MODULES" in said
    assert list(tmp_path.iterdir()) == [], "nothing is started or created"


def test_the_app_refuses_to_be_built_without_a_handler_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from tally.app import create_app
    from tally.config import Settings
    from tally.runtime import Runtime

    # The environment variable is the plug-in point itself (read when the app starts), not a patch of Tally.
    monkeypatch.setenv("TALLY_HANDLER_MODULES", "tests.integration.no_such_handlers")
    runtime = Runtime(Settings(TALLY_DATABASE_URL="postgresql://127.0.0.1/unused"), "postgresql+psycopg://x/y",
                      "sk_test_x", None, [])
    with pytest.raises(HandlerModuleError, match="no_such_handlers"):
        create_app(runtime.services(run_worker=False))
