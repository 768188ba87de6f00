"""Every mutating Stripe call in Tally carries an idempotency key derived from Tally's own records (the
developers' guide; ``tally.stripe_gateway.idempotency_key`` / ``update_key``), so that a request retried after a
crash or a lost answer is the same Stripe request. Read from the source, so a new call without one fails here
rather than in production after a timeout.

The few calls where every attempt is meant to be a new request are listed in ``NEW_EACH_TIME`` with the
reason; the SDK still sends each of them with a key of its own (a random one per call, reused by its network
retries: ``stripe._api_requestor`` sets one on every POST)."""

from __future__ import annotations

import ast
from pathlib import Path

TALLY = Path(__file__).resolve().parents[2] / "tally"
# SDK methods that change something in Stripe (reads are retrieve/list/search).
NEW_EACH_TIME = {
    ("tally/orders/intents.py", "payment_intents.confirm_async"):
        "each confirmation is a new attempt (the buyer tries again after a decline); a state check before it "
        "keeps a retried request from confirming twice",
    ("tally/orders/intents.py", "payment_intents.update_async"):
        "adds a payment method type; a key from our ids would replay the first switch's answer when the buyer "
        "switches back",
    ("tally/doctor/checks.py", "checkout.sessions.create_async"): "each doctor run makes its own probe session",
    ("tally/doctor/checks.py", "checkout.sessions.expire_async"): "expires the probe session it just made",
}
READS = {"retrieve", "list", "search", "list_line_items", "retrieve_async", "list_async", "search_async",
         "list_line_items_async", "auto_paging_iter"}


def _is_stripe_call(node: ast.Call) -> bool:
    """``<client>.v1.<resource>[.<sub>].<method>(...)``: the service-based SDK's shape."""
    func = node.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    return "v1" in parts and len(parts) >= 3


def _has_key(node: ast.Call) -> bool:
    for keyword in node.keywords:
        if keyword.arg == "options" and "idempotency_key" in ast.unparse(keyword.value):
            return True
    return False


def mutating_calls_without_a_key() -> list[str]:
    found = []
    for path in sorted(TALLY.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_stripe_call(node):
                method = node.func.attr  # type: ignore[attr-defined]
                where = str(path.relative_to(TALLY.parent))
                called = ast.unparse(node.func).split(".v1.", 1)[-1]
                if method not in READS and not _has_key(node) and (where, called) not in NEW_EACH_TIME:
                    found.append(f"{where}:{node.lineno} {called}")
    return found


def test_every_mutating_stripe_call_has_an_idempotency_key() -> None:
    assert mutating_calls_without_a_key() == []


def test_the_scan_sees_the_calls_it_checks() -> None:
    """Guards the scan itself: it finds Tally's Checkout Session creation, which has a key."""
    seen = []
    for path in TALLY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _is_stripe_call(node) and _has_key(node):
                seen.append(ast.unparse(node.func))
    assert any(s.endswith("checkout.sessions.create_async") for s in seen), seen
