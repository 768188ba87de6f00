"""scripts/serve installs what serving needs and nothing for tests; scripts/test adds the test tools.

scripts/setup runs here in a copy of the repository whose .venv has a pip that only writes down what it was
asked to install (a real install takes minutes and the network); what it is asked is what this checks."""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "playwright", "schemathesis", "hypothesis"}


def _requirement_name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()


def test_serving_needs_no_test_tool() -> None:
    serving = {_requirement_name(r) for r in requires("tally") or [] if "extra ==" not in r}
    testing = {_requirement_name(r) for r in requires("tally") or [] if 'extra == "test"' in r}
    assert serving and not serving & TEST_TOOLS
    assert TEST_TOOLS <= testing


def _copy_with_recording_pip(tmp_path: Path) -> Path:
    repo = tmp_path / "clone"
    (repo / "scripts").mkdir(parents=True)
    for name in ("setup", "serve", "test"):
        shutil.copy2(ROOT / "scripts" / name, repo / "scripts" / name)
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(Path("/bin/true"))
    pip = bin_dir / "pip"
    pip.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../pip.log"\n')
    pip.chmod(0o755)
    return repo


def _setup(repo: Path, *args: str) -> list[str]:
    log = repo / ".venv" / "pip.log"
    log.unlink(missing_ok=True)
    subprocess.run(["bash", str(repo / "scripts" / "setup"), *args], check=True, timeout=60)
    return [line for line in log.read_text().splitlines() if "-e" in line] if log.exists() else []


def test_scripts_serve_and_test_ask_for_what_they_need(tmp_path: Path) -> None:
    assert "scripts/setup serve\n" in (ROOT / "scripts" / "serve").read_text()
    assert "scripts/setup test\n" in (ROOT / "scripts" / "test").read_text()
    repo = _copy_with_recording_pip(tmp_path)
    assert [line.split()[-1] for line in _setup(repo, "serve")] == ["."]
    assert _setup(repo, "serve") == [], "set up once per pyproject"
    assert [line.split()[-1] for line in _setup(repo, "test")] == [".[test]"]
    assert _setup(repo, "serve") == [], "the test set-up serves too"
