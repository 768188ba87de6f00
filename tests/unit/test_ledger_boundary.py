"""The ledger is closed: no module outside ``tally/ledger/`` imports one of its private names or writes one of
its tables. Everything else goes through its public API (``tally.ledger.credits``, ``spending``, ``posting``,
``expiry``, ``service``, ``references``), so the rules of credits live in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TALLY = ROOT / "tally"
LEDGER = TALLY / "ledger"
LEDGER_TABLES = ("ledger_accounts", "ledger_transactions", "ledger_entries", "wallet_balances", "credit_grants",
                 "credit_holds", "credit_totals", "credit_total_deltas", "credit_money_totals", "credit_money_deltas")
LEDGER_MODELS = ("LedgerAccount", "LedgerTransaction", "LedgerEntry", "WalletBalance", "CreditGrant", "CreditHold",
                 "CreditTotal", "CreditMoneyTotal")
WRITE_SQL = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+(" + "|".join(LEDGER_TABLES) + r")\b",
                       re.IGNORECASE)
WRITE_ORM = re.compile(r"\b(insert|update|delete)\(\s*(" + "|".join(LEDGER_MODELS) + r")\b")


def outside_modules() -> list[Path]:
    return [p for p in TALLY.rglob("*.py") if LEDGER not in p.parents and "migrations" not in p.parts]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def private_ledger_uses(path: Path) -> list[str]:
    """``from tally.ledger.x import _name``, and ``x._name`` on a module imported from tally.ledger."""
    tree = ast.parse(path.read_text(), str(path))
    found, ledger_aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module if node.level == 0 else _absolute(path, node.module, node.level)
            if module == "tally.ledger" or module.startswith("tally.ledger."):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{_shown(path)}:{node.lineno} imports {module}.{alias.name}")
                    ledger_aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in ledger_aliases):
            found.append(f"{_shown(path)}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def _absolute(path: Path, module: str, level: int) -> str:
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    base = package[:len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module])


def test_no_module_outside_the_ledger_uses_its_private_names() -> None:
    found = [use for path in outside_modules() for use in private_ledger_uses(path)]
    assert found == []


def test_no_module_outside_the_ledger_writes_its_tables() -> None:
    found = []
    for path in outside_modules():
        text = path.read_text()
        for pattern in (WRITE_SQL, WRITE_ORM):
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """The scanners themselves: a module that breaks both rules is reported."""
    bad = tmp_path / "probe.py"
    bad.write_text("from tally.ledger.posting import _CREDIT\nfrom tally.ledger import service as ledger\n"
                   "x = ledger._secret\nSQL = 'UPDATE wallet_balances SET balance = 0'\n"
                   "stmt = insert(LedgerEntry).values()\n")
    assert private_ledger_uses(bad) == ["probe.py:1 imports tally.ledger.posting._CREDIT",
                                        "probe.py:3 uses ledger._secret"]
    assert WRITE_SQL.search(bad.read_text()) and WRITE_ORM.search(bad.read_text())
