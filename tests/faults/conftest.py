"""Fault tests run scaled down by default (CI: a few minutes on 2 cores); ``--long`` runs the big numbers."""

from __future__ import annotations

import pytest

from tests.faults.harness import Scale


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="fault tests: thousands of events, more workers, longer chaos")


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> Scale:
    return Scale.long() if request.config.getoption("--long") else Scale.ci()
