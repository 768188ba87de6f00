"""The benchmark scripts are not run by the suite (they print figures and take minutes), but each must at least
start: every one answers ``--help``, so a broken script is found here rather than by the next ``make bench``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = ["webhooks.py", "spend.py", "checkout.py", "sandbox.py", "run_all.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_starts(script: str) -> None:
    done = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                          timeout=60, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
