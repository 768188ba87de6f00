#!/usr/bin/env python3
"""The longest and most complex functions of ``tally/`` and ``stripe_sandbox/``, and those past the limits.

    .venv/bin/python scripts/function_sizes.py [--top 15]

Limits (issue 16): a function of at most about 60 lines (``MAX_LINES``, from ``def`` to its last line, docstring
included) and cyclomatic complexity at most 15 (``MAX_COMPLEXITY``, radon's count: one per branch, loop,
boolean operator, ``except`` and comprehension condition). A function past one stays only with a comment right
above it (or above its decorators) that starts ``# long:`` and says why. Exits 1 when a function is past a limit
without one; ``tests/unit/test_function_sizes.py`` runs it.

Migrations are left out: each is a script of DDL steps read top to bottom, kept as written when it shipped.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tally", "stripe_sandbox")
MAX_LINES = 60
MAX_COMPLEXITY = 15
REASON = "# long:"


@dataclass(frozen=True)
class Measured:
    path: str
    line: int
    name: str
    lines: int
    complexity: int
    reason: str | None  # the ``# long:`` comment, when there is one

    @property
    def over(self) -> bool:
        return self.lines > MAX_LINES or self.complexity > MAX_COMPLEXITY

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name}: {self.lines} lines, complexity {self.complexity}"


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def _reason(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The ``# long:`` comment block right above the function or its decorators."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1  # 0-based index of that line
    above = first - 1
    block: list[str] = []
    while above >= 0 and lines[above].strip().startswith("#"):
        block.insert(0, lines[above].strip())
        above -= 1
    for i, comment in enumerate(block):
        if comment.startswith(REASON):
            return " ".join(c.lstrip("# ") for c in block[i:])
    return None


def _complexities(source: str) -> dict[int, int]:
    """Cyclomatic complexity by the function's ``def`` line (methods and nested functions too)."""
    found: dict[int, int] = {}

    def visit(blocks: list[object]) -> None:
        for block in blocks:
            if isinstance(block, Function):
                found[block.lineno] = block.complexity
                visit(list(block.closures))
            else:  # a class: its methods and inner classes
                visit(list(getattr(block, "methods", [])) + list(getattr(block, "inner_classes", [])))

    visit(cc_visit(source))
    return found


def measure(path: Path) -> list[Measured]:
    source = path.read_text()
    lines = source.splitlines()
    complexity = _complexities(source)
    shown = str(path.relative_to(ROOT))
    return [Measured(shown, node.lineno, node.name, (node.end_lineno or node.lineno) - node.lineno + 1,
                     complexity.get(node.lineno, 1), _reason(lines, node))
            for node in ast.walk(ast.parse(source, shown))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=15, help="how many of the longest and most complex to list")
    args = parser.parse_args(argv)
    measured = [m for path in sources() for m in measure(path)]
    print(f"{len(measured)} functions in {', '.join(PACKAGES)}; limits: {MAX_LINES} lines, complexity "
          f"{MAX_COMPLEXITY}")
    print(f"\nlongest {args.top}:")
    for m in sorted(measured, key=lambda m: -m.lines)[:args.top]:
        print(f"  {m}")
    print(f"\nmost complex {args.top}:")
    for m in sorted(measured, key=lambda m: -m.complexity)[:args.top]:
        print(f"  {m}")
    excused = [m for m in measured if m.over and m.reason]
    print(f"\npast a limit, with a reason ({len(excused)}):")
    for m in excused:
        print(f"  {m}\n      {m.reason}")
    unexcused = [m for m in measured if m.over and not m.reason]
    if unexcused:
        print(f"\npast a limit without a '{REASON}' comment ({len(unexcused)}):")
        for m in unexcused:
            print(f"  {m}")
        return 1
    print("\nevery function is within the limits or says why not")
    return 0


if __name__ == "__main__":
    sys.exit(main())
