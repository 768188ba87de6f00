"""The README's shell examples run as written: every ``sh``/``bash`` block that is not marked as a template (a
first line ``# template: …``), in the README's order, as one script against `tally serve` on the defaults, as
`scripts/serve` starts it. The README cannot drift from the product."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.served_tally import TALLY, env_for, served

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(sh|bash)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def runnable_blocks(text: str) -> list[str]:
    """The blocks to run. Left out: templates, and the README's own set-up commands (`scripts/serve`,
    `scripts/test`), which this very test run is."""
    blocks = [body for _, body in BLOCK.findall(text)]
    return [b for b in blocks if not b.startswith("# template") and not b.startswith("scripts/")]


def test_the_readme_marks_every_block_it_does_not_run() -> None:
    blocks = [body for _, body in BLOCK.findall(README.read_text())]
    skipped = [b for b in blocks if b not in runnable_blocks(README.read_text())]
    assert all(b.startswith("# template") or b.startswith("scripts/") for b in skipped)
    assert len(runnable_blocks(README.read_text())) >= 8


def test_the_readme_examples_run_against_tally_serve(tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + "\n".join(runnable_blocks(README.read_text()))
    # `.venv/bin/tally` as in the repository folder where scripts/serve runs.
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "tally").symlink_to(TALLY)
    with served(tmp_path) as tally:
        env = {**env_for(tmp_path), "TALLY": tally.url, "PATH": os.environ["PATH"]}
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    assert '"status": "paid"' in out and '"coins_added": 1100' in out, out
    assert '"status":"succeeded"' in out.replace(" ", ""), out
    assert '"card"' in out and "fpx" in out  # the payment methods of MYR
