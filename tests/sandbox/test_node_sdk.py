"""A second official SDK against the sandbox: tests/node/scenario.js drives it with the `stripe` npm package
(pinned in tests/node/package-lock.json, installed here by `npm ci`), as a Node.js backend would. The sandbox
runs in this process, so the suite's conformance check sees every answer Node gets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.control import private_sandbox

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "Node.js and npm are needed (Debian's nodejs and npm packages)"
    installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    return NODE_DIR / "node_modules"


def test_the_node_scenario_passes_against_the_sandbox(node_modules: Path) -> None:
    with private_sandbox(webhook_retry_delays=(0.2,)) as (server, _client):
        ran = subprocess.run(["node", "--test-reporter=spec", "scenario.js", server.url], cwd=NODE_DIR,
                             capture_output=True, text=True, timeout=240, env={**os.environ, "NO_COLOR": "1"})
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]
    assert "ℹ fail 0" in ran.stdout and "ℹ pass 0" not in ran.stdout


def test_the_presence_table_is_the_pinned_packages(node_modules: Path) -> None:
    """tests/stripe_presence.json (which fields the shape check requires) is what the pinned stripe package
    declares."""
    checked = subprocess.run([sys.executable, "scripts/stripe_presence.py", "--check"], cwd=ROOT,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
