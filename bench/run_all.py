"""``make bench``: run bench/webhooks.py, bench/spend.py, bench/checkout.py and bench/sandbox.py one after the
other and write their tables to bench/results.md (not committed: figures belong to the machine that made them).

    .venv/bin/python bench/run_all.py [--quick] [--only sandbox.py ...] [--output PATH]

``--quick`` runs each with smaller numbers (about four minutes in all instead of about eight). bench/sandbox.py
compares with localstripe when it is installed (``pip install -e '.[bench]'``) and says so when it is not;
bench/spend.py runs pgledger beside Tally when $TALLY_BENCH_PGLEDGER names a checkout of it and says so when not."""

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
    "spend.py": ("Credit spends", [], ["--seconds", "3", "--rounds", "1", "--paced-seconds", "3"]),
    "checkout.py": ("Checkout overhead", [], ["--checkouts", "150"]),
    "sandbox.py": ("Stripe sandbox beside localstripe", [], ["--seconds", "1", "--repeats", "1",
                                                            "--webhook-events", "150"]),
}


def tables(lines: list[str]) -> list[str]:
    """The markdown table lines of a bench's output, one blank line between consecutive tables."""
    out: list[str] = []
    for line in lines:
        if line.startswith("|"):
            out.append(line)
        elif out and out[-1]:
            out.append("")
    return out[:-1] if out and not out[-1] else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="run only this bench (repeatable)")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    sections = [f"# Tally benchmarks\n\n{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
                f"{os.cpu_count()} cores, Python {platform.python_version()}. Each ratio is against a baseline "
                f"measured in the same run; the commands are in each script's docstring.\n"]
    failed = False
    for script, (title, full, quick) in BENCHES.items():
        if args.only and script not in args.only:
            continue
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"== {' '.join(command)}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
        sys.stdout.write(done.stdout)
        lines = done.stdout.splitlines()
        table = tables(lines)
        notes = [line for line in lines if line and not line.startswith("|")]
        body = "\n".join(table) if table else f"failed (exit {done.returncode}):\n\n```\n{done.stderr[-3000:]}\n```"
        failed |= done.returncode != 0
        sections.append(f"## {title} — `bench/{script}`\n\n{body}\n\n<details><summary>run log</summary>\n\n```\n"
                        + "\n".join(notes) + "\n```\n</details>\n")
        if done.returncode:
            sys.stderr.write(done.stderr[-3000:])
    args.output.write_text("\n".join(sections))
    print(f"wrote {args.output}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
