"""Reactions between resources without import cycles: e.g. Checkout completes a session when the
PaymentIntent behind it succeeds, wherever that success came from (hosted page, redirect page, settlement)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Listener = Callable[[Any, Obj], None]

# Called with (sandbox, payment_intent) after every PaymentIntent status change.
PAYMENT_INTENT_CHANGED: list[Listener] = []
# Called with (sandbox, setup_intent) after every SetupIntent status change.
SETUP_INTENT_CHANGED: list[Listener] = []


def on_payment_intent_changed(listener: Listener) -> Listener:
    PAYMENT_INTENT_CHANGED.append(listener)
    return listener


def payment_intent_changed(sb: Any, payment_intent: Obj) -> None:
    for listener in PAYMENT_INTENT_CHANGED:
        listener(sb, payment_intent)


def on_setup_intent_changed(listener: Listener) -> Listener:
    SETUP_INTENT_CHANGED.append(listener)
    return listener


def setup_intent_changed(sb: Any, setup_intent: Obj) -> None:
    for listener in SETUP_INTENT_CHANGED:
        listener(sb, setup_intent)


# Conformance checks (the test suite registers one): called with (where, body) for every JSON answer of the
# API and every event the sandbox records; each returns the problems it found in the body's shape.
BodyCheck = Callable[[str, Any], list[str]]
BODY_CHECKS: list[BodyCheck] = []


def on_body(check: BodyCheck) -> BodyCheck:
    if check not in BODY_CHECKS:
        BODY_CHECKS.append(check)
    return check


def body_problems(where: str, body: Any) -> list[str]:
    return [problem for check in BODY_CHECKS for problem in check(where, body)]
