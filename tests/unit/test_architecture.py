"""The architecture written down in ``.importlinter`` holds (the sandbox never imports Tally; only the gateway
imports ``stripe``; in each domain routes → service → models, never upwards), and two rules import-linter has no
contract for: no import cycle between modules (function-local imports count: they are no way around a cycle),
and no module of one Tally package uses another package's private names."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("tally", "stripe_sandbox")
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert import_cycles(graph) == [["a.x", "a.y"]]


def _package(module: str) -> str:
    """The Tally package a module belongs to: ``tally.orders.service`` → ``tally.orders``; top-level modules
    (``tally.db``) are each their own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(importer: str, is_package: bool, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def foreign_private_uses(path: Path) -> list[str]:
    importer = _module_of(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    foreign_aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(importer, is_package, node.module, node.level)
            if not source.startswith("tally") or _package(source) == _package(importer):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{importer}:{node.lineno} imports {source}.{alias.name}")
                foreign_aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tally") and _package(alias.name) != _package(importer) and alias.asname:
                    foreign_aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in foreign_aliases):
            found.append(f"{importer}:{node.lineno} uses {foreign_aliases[node.value.id]}.{node.attr}")
    return found


def test_no_package_uses_another_packages_private_names() -> None:
    found = [use for path in sorted((ROOT / "tally").rglob("*.py")) if "migrations" not in path.parts
             for use in foreign_private_uses(path)]
    assert found == []


def test_the_private_name_finder_finds_both_forms(tmp_path: Path) -> None:
    module = ROOT / "tally" / "orders" / "_probe_for_test.py"
    module.write_text("from tally.subscriptions import mirror\nfrom ..ledger.posting import _CREDIT\n"
                      "from .service import _own\nx = mirror._id('x')\n")
    try:
        assert foreign_private_uses(module) == [
            "tally.orders._probe_for_test:2 imports tally.ledger.posting._CREDIT",
            "tally.orders._probe_for_test:4 uses tally.subscriptions.mirror._id"]
    finally:
        module.unlink()
