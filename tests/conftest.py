"""Shared fixtures: an in-process Stripe sandbox and an SDK client pointed at it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import stripe
import structlog

from stripe_sandbox import SandboxConfig, SandboxServer, hooks
from tests import leftovers
from tests.stripe_shapes import SEEN, SHAPE_LEDGER, checked_client, producible_types

# This run's temporary folder, before any fixture makes one: removed at the end (tests/leftovers.py).
RUN_FOLDER = leftovers.start()


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # pytest then ends the session as for Ctrl+C, and pytest_sessionfinish cleans up


# A run stopped with SIGTERM (a CI time limit, `timeout`, a process manager) cleans up as one stopped with Ctrl+C.
signal.signal(signal.SIGTERM, _interrupted)

# Rate limits (tally.security) stay on in every test server, but the suite sends thousands of requests from
# 127.0.0.1 within minutes: raise them for the run. tests/security sets low limits explicitly to test them.
# Apps built in this process (TallyServer, the schema and header tests) leave logging alone: their lines go to
# pytest's capture (shown with a failing test), not to stderr among the progress dots. Processes the tests
# start log JSON into their pipes (tests/served_tally.py, tests/faults/harness.py, tests/integration/test_worker.py).
os.environ.setdefault("TALLY_LOG_FORMAT", "plain")
# With logging left alone, structlog's own default would print straight to stdout: send its lines through the
# standard loggers instead, which pytest captures.
structlog.configure(processors=[structlog.contextvars.merge_contextvars, structlog.processors.KeyValueRenderer()],
                    logger_factory=structlog.stdlib.LoggerFactory(), wrapper_class=structlog.stdlib.BoundLogger)
for _limit in ("TALLY_RATE_LIMIT_USER", "TALLY_RATE_LIMIT_IP", "TALLY_RATE_LIMIT_API_KEY", "TALLY_RATE_LIMIT_LOGIN"):
    os.environ.setdefault(_limit, "100000/minute")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(port=0, async_settle_seconds=0.5)) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_client(sandbox: SandboxServer) -> stripe.StripeClient:
    """The SDK pointed at the session's sandbox; every successful answer is shape-checked (tests.stripe_shapes)."""
    return checked_client(sandbox.url)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from tests.tally_harness import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def own_database_url() -> Iterator[str]:
    """A database of the test's own, for a test server whose worker must not share the session's database
    (tests/tally_harness.py says why)."""
    from tests.tally_harness import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url() -> Iterator[str]:
    """A database of the module's own, for a module-scoped test server with a worker."""
    from tests.tally_harness import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def tally(database_url: str):  # type: ignore[no-untyped-def]
    """The real Tally over HTTP, with its own sandbox and an in-process worker."""
    from tests.tally_harness import TallyServer

    with TallyServer(database_url) as server:
        yield server


# -- conformance: every answer and event of every in-process sandbox is checked (tests/stripe_shapes.py) -------
hooks.on_body(SHAPE_LEDGER.check)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    """Fail the test during whose setup or call the sandbox produced a body not shaped as Stripe's."""
    outcome = yield
    found = SHAPE_LEDGER.since(item.stash.get(_SHAPE_MARK, 0))
    if found:
        raise AssertionError("the sandbox produced bodies not shaped as Stripe's:\n" + "\n".join(found[:40]))
    return outcome


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_SHAPE_MARK] = SHAPE_LEDGER.mark()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How much the conformance check saw: bodies checked, object types produced, and those never produced."""
    if not SHAPE_LEDGER.checked:
        return
    never = sorted(producible_types() - SEEN)
    write = terminalreporter.write_line
    terminalreporter.section("Stripe shape conformance")
    write(f"{SHAPE_LEDGER.checked} sandbox bodies checked; {len(SEEN)} object types produced: "
          f"{', '.join(sorted(SEEN))}")
    write(f"object types the sandbox builds that this run never produced: {', '.join(never) or 'none'}")
    if SHAPE_LEDGER.problems:
        write(f"{len(SHAPE_LEDGER.problems)} shape problems, first: {SHAPE_LEDGER.problems[0]}")


_SHAPE_MARK = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Failures included: stop what the run holds, fail the run if it left a process running, delete its
    temporary folder."""
    from tally import embedded_pg

    embedded_pg.release_all()  # the suite's own embedded PostgreSQL (tests.tally_harness.fresh_database)
    left = leftovers.finish(RUN_FOLDER)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("FAILED: the test run left processes running (now stopped):", red=True)
            for line in left:
                reporter.write_line(f"  {line}")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For a test that configures Tally's logging itself: the root logger's handlers and level put back."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
