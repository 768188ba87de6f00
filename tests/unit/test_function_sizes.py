"""No function of ``tally/`` or ``stripe_sandbox/`` is longer than about 60 lines or more complex than 15 without
a ``# long:`` comment saying why (``scripts/function_sizes.py``, which lists the longest and most complex)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "function_sizes.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("function_sizes", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_function_is_within_the_limits_or_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    code = load().main(["--top", "5"])
    out = capsys.readouterr().out
    assert code == 0, out[out.find("past a limit without"):]


def test_a_reason_is_read_above_the_decorators_and_measures_are_counted(tmp_path: Path) -> None:
    sizes = load()
    source = tmp_path / "probe.py"
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(16))
    source.write_text(f"# long: one branch per case of a table\n@staticmethod\ndef table(x):\n{branches}\n\n"
                      f"def plain(x):\n{branches}\n")
    sizes.ROOT = tmp_path
    table, plain = sorted(sizes.measure(source), key=lambda m: m.line)
    assert (table.name, table.complexity, table.lines, table.over) == ("table", 17, 33, True)
    assert table.reason == "long: one branch per case of a table" and plain.reason is None
