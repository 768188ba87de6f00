"""The end-of-run check (tests/leftovers.py): a process the run started that still runs is reported and stopped,
and the run's temporary folder goes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests import leftovers


def test_temporary_files_of_the_run_go_to_its_own_folder() -> None:
    assert Path(tempfile.gettempdir()).name.startswith("tally-tests-")


def test_a_process_left_running_is_reported_stopped_and_the_folder_deleted(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    straggler = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(root / "data")])
    try:
        assert straggler.pid in [p.pid for p in leftovers.leftover_processes(root)]
        described = leftovers.finish(root, grace_seconds=0)
        assert len(described) == 1 and described[0].startswith(f"pid {straggler.pid}: ")
        assert straggler.wait(timeout=30) != 0  # killed
        assert not root.exists()
    finally:
        straggler.kill()
        straggler.wait()


def test_nothing_left_nothing_reported(tmp_path: Path) -> None:
    root = tmp_path / "quiet"
    root.mkdir()
    finished = subprocess.run([sys.executable, "-c", "pass", str(root)], timeout=60)
    assert finished.returncode == 0
    assert leftovers.finish(root, grace_seconds=0) == [] and not root.exists()
