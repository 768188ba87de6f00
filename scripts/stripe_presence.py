"""Which fields Stripe always returns, read from the official Node SDK's type declarations.

stripe-python marks a field ``Optional`` both when it may be null and when it may be absent; stripe-node's
``.d.ts`` tell the two apart (``name: T | null`` is always present, ``name?: T`` may be missing). This script
reads the pinned package that ``tests/node`` installs (``npm ci`` there first) and writes
``tests/stripe_presence.json``: for each object type, and each nested type under it, the fields always present.
``tests/stripe_shapes.py`` uses it to require those fields; ``tests/sandbox/test_node_sdk.py`` checks the file is
what this script makes from the installed package.

Usage: python scripts/stripe_presence.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "tests" / "node" / "node_modules" / "stripe" / "cjs" / "resources"
OUTPUT = ROOT / "tests" / "stripe_presence.json"

_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_OPEN = re.compile(r"^\s*(?:export\s+)?(?:declare\s+)?(interface|namespace|class)\s+(\w+)[^{]*\{\s*$")
_FIELD = re.compile(r"^\s*(\w+)(\?)?:")
_OBJECT = re.compile(r"^\s*object:\s*'([\w.]+)';")


def _interfaces(text: str) -> dict[str, tuple[list[str], str | None]]:
    """Every interface of a .d.ts as dotted path -> (always-present fields, its ``object`` literal)."""
    found: dict[str, tuple[list[str], str | None]] = {}
    stack: list[tuple[str, str, int]] = []  # (kind, name, depth at which its body starts)
    depth = 0
    for line in _COMMENT.sub("", text).splitlines():
        opened = _OPEN.match(line)
        if opened:
            depth += 1
            stack.append((opened.group(1), opened.group(2), depth))
            if opened.group(1) == "interface":
                found[".".join(n for _, n, _ in stack)] = ([], None)
            continue
        if stack and stack[-1][0] == "interface" and depth == stack[-1][2]:
            path = ".".join(n for _, n, _ in stack)
            field = _FIELD.match(line)
            if field and not field.group(2):
                found[path][0].append(field.group(1))
            literal = _OBJECT.match(line)
            if literal:
                found[path] = (found[path][0], literal.group(1))
        depth += line.count("{") - line.count("}")
        while stack and depth < stack[-1][2]:
            stack.pop()
    return found


def presence() -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for source in sorted(RESOURCES.rglob("*.d.ts")):
        interfaces = _interfaces(source.read_text())
        for path, (_, object_type) in interfaces.items():
            if object_type is None or "." in path or path.startswith("Deleted"):
                continue
            nested = {p[len(path) + 1:]: sorted(fields) for p, (fields, _) in interfaces.items()
                      if p.startswith(path + ".")}
            out[object_type] = {"": sorted(interfaces[path][0]), **dict(sorted(nested.items()))}
    return dict(sorted(out.items()))


def main(argv: list[str]) -> int:
    if not RESOURCES.is_dir():
        print(f"{RESOURCES} is missing: run `npm ci` in tests/node first", file=sys.stderr)
        return 2
    made = json.dumps(presence(), indent=0, sort_keys=True) + "\n"
    if "--check" in argv:
        if OUTPUT.read_text() != made:
            print(f"{OUTPUT} is not what the installed stripe package declares: rerun this script", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
