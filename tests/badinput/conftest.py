"""A Tally of its own for the bad-input tests: fuzzing writes plenty of rejected (and some accepted) junk,
which other folders' tests should never see."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tally_harness import TallyServer, fresh_database


@pytest.fixture(scope="package")
def badinput_tally() -> Iterator[TallyServer]:
    # Rate limits off: fuzzing sends far more than a user would, and tests/security covers the limits.
    with fresh_database() as url, TallyServer(url, TALLY_RATE_LIMITS=False) as server:
        yield server
