"""``make bench``: run bench/webhooks.py, bench/spend.py and bench/checkout.py one after the other and write
their tables to bench/results.md (not committed: figures belong to the machine that made them).

    .venv/bin/python bench/run_all.py [--quick]

``--quick`` runs each with smaller numbers (about three minutes in all instead of about six)."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "webhooks.py": ("Webhook pipeline", [], ["--events", "1500", "--seconds", "5", "--pgbench-seconds", "5",
                                             "--rate-seconds", "3"]),
    "spend.py": ("Credit spends", [], ["--seconds", "4"]),
    "checkout.py": ("Checkout overhead", [], ["--checkouts", "150"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sections = [f"# Tally benchmarks\n\n{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
                f"{os.cpu_count()} cores, Python {platform.python_version()}. Each ratio is against a baseline "
                f"measured in the same run; the commands are in each script's docstring.\n"]
    failed = False
    for script, (title, full, quick) in BENCHES.items():
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"== {' '.join(command)}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
        sys.stdout.write(done.stdout)
        lines = done.stdout.splitlines()
        table = [line for line in lines if line.startswith("|")]
        notes = [line for line in lines if line and not line.startswith("|")]
        body = "\n".join(table) if table else f"failed (exit {done.returncode}):\n\n```\n{done.stderr[-3000:]}\n```"
        failed |= done.returncode != 0
        sections.append(f"## {title} — `bench/{script}`\n\n{body}\n\n<details><summary>run log</summary>\n\n```\n"
                        + "\n".join(notes) + "\n```\n</details>\n")
        if done.returncode:
            sys.stderr.write(done.stderr[-3000:])
    (HERE / "results.md").write_text("\n".join(sections))
    print(f"wrote {HERE / 'results.md'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
