"""Only the gateway talks to Stripe: no module of ``tally`` other than ``tally.stripe_gateway`` imports the
``stripe`` SDK (read from the source: any ``import stripe``, ``import stripe.x``, ``from stripe[.x] import …``,
at any depth of the module, including imports inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

TALLY = Path(__file__).resolve().parents[2] / "tally"
GATEWAY = TALLY / "stripe_gateway"


def _imports_stripe(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name == "stripe" or alias.name.startswith("stripe.") for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return node.level == 0 and (module == "stripe" or module.startswith("stripe."))
    return False


def stripe_importers(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if _imports_stripe(node):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_no_module_but_the_gateway_imports_stripe() -> None:
    outside = [where for where in stripe_importers(TALLY) if not where.startswith("tally/stripe_gateway/")]
    assert outside == []


def test_the_scan_finds_the_gateways_own_imports() -> None:
    """Guards the scan itself: the gateway does import the SDK, and the scan sees it."""
    assert any(where.startswith("tally/stripe_gateway/") for where in stripe_importers(TALLY))


def test_the_scan_tells_the_sdk_from_names_that_only_start_like_it(tmp_path: Path) -> None:
    package = tmp_path / "tally"
    package.mkdir()
    (package / "a.py").write_text("from . import stripe_gateway\nfrom stripe_sandbox import x\nimport stripe_gateway\n")
    (package / "b.py").write_text("def f():\n    from stripe.checkout import Session\n")
    (package / "c.py").write_text("import os, stripe\n")
    assert stripe_importers(package) == ["tally/b.py:2", "tally/c.py:1"]
