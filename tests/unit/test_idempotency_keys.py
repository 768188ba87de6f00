"""Every mutating Stripe call in Tally carries an idempotency key derived from Tally's own records (the
developers' guide; ``tally.stripe_gateway.idempotency_key`` / ``update_key``), so that a request retried after a
crash or a lost answer is the same Stripe request. Read from the source, so a new call without one fails here
rather than in production after a timeout.

Stripe is called only through the gateway (``tally.stripe_gateway``), whose mutating calls take
``idempotency_key`` as a required keyword and send it. A caller can pass ``None`` only where every attempt is
meant to be a new request; those calls are listed in ``NEW_EACH_TIME`` with the reason (the SDK still sends
each of them with a key of its own: a random one per call, reused by its network retries)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from tally.stripe_gateway import StripeGateway

TALLY = Path(__file__).resolve().parents[2] / "tally"
GATEWAY = TALLY / "stripe_gateway"
NEW_EACH_TIME = {
    ("tally/orders/intents.py", "confirm_payment_intent"):
        "each confirmation is a new attempt (the buyer tries again after a decline); a state check before it "
        "keeps a retried request from confirming twice",
    ("tally/orders/intents.py", "update_payment_intent"):
        "adds a payment method type; a key from our ids would replay the first switch's answer when the buyer "
        "switches back",
    ("tally/doctor/checks.py", "create_checkout_session"): "each doctor run makes its own probe session",
    ("tally/doctor/checks.py", "expire_checkout_session"): "expires the probe session it just made",
}
READS = ("retrieve_", "list_", "find_", "first_", "every_", "cached_")


def _gateway_calls() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in inspect.getmembers(StripeGateway)
            if inspect.iscoroutinefunction(member) and not name.startswith("_") and name != "close"}


def _mutating() -> set[str]:
    return {name for name in _gateway_calls() if not name.startswith(READS)}


def test_every_mutating_gateway_call_requires_a_key() -> None:
    missing = []
    for name in sorted(_mutating()):
        parameter = _gateway_calls()[name].parameters.get("idempotency_key")
        if parameter is None or parameter.kind is not inspect.Parameter.KEYWORD_ONLY \
                or parameter.default is not inspect.Parameter.empty:
            missing.append(name)
    assert missing == []


def test_the_gateway_sends_the_key_on_every_mutating_sdk_call() -> None:
    """``<client>.v1.<resource>[.<sub>].<method>(...)`` in the gateway: a write passes ``options`` with the key."""
    unkeyed = []
    for path in sorted(GATEWAY.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            chain = ast.unparse(node.func)
            if ".v1." not in chain or "(" in chain:
                continue  # not an SDK call (a method of its answer, say)
            method = chain.rsplit(".", 1)[-1]
            if method.startswith(("retrieve", "list")):
                continue
            if not any(k.arg == "options" and "idempotency_key" in ast.unparse(k.value) for k in node.keywords):
                unkeyed.append(f"{path.name}:{node.lineno} {ast.unparse(node.func)}")
    assert unkeyed == []


def calls_without_a_key() -> list[str]:
    """Calls of the gateway's writes that pass ``idempotency_key=None`` and are not listed as meant to."""
    found = []
    mutating = _mutating()
    for path in sorted(TALLY.rglob("*.py")):
        if GATEWAY in path.parents:
            continue
        where = str(path.relative_to(TALLY.parent))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr not in mutating:
                continue
            key = next((k.value for k in node.keywords if k.arg == "idempotency_key"), None)
            if isinstance(key, ast.Constant) and key.value is None and (where, node.func.attr) not in NEW_EACH_TIME:
                found.append(f"{where}:{node.lineno} {node.func.attr}")
    return found


def test_every_mutating_stripe_call_has_an_idempotency_key() -> None:
    assert calls_without_a_key() == []


def test_the_scan_sees_the_calls_it_checks() -> None:
    """Guards the scan itself: it knows the gateway's writes, and finds the listed calls that pass no key."""
    assert {"create_checkout_session", "update_subscription", "release_subscription_schedule"} <= _mutating()
    seen = set()
    for path in TALLY.rglob("*.py"):
        where = str(path.relative_to(TALLY.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and any(
                    k.arg == "idempotency_key" and isinstance(k.value, ast.Constant) for k in node.keywords):
                seen.add((where, node.func.attr))
    assert set(NEW_EACH_TIME) <= seen
