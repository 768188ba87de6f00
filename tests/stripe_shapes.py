"""One check for every Stripe-shaped body: the sandbox must answer what Stripe answers.

``body_problems(body)`` lists what is wrong with every Stripe object in a JSON body (the body itself, list
items, expanded objects, an event's ``data.object``), measured against two references for the pinned API
version:
- stripe-python's typed resources: every field present has its declared type (recursively, through the
  nested classes the SDK declares), a ``Literal`` field holds one of its values, an expandable field is an id or
  the expanded object (itself checked), and no field is one the SDK does not declare, at any depth;
- which fields are always present: those stripe-node's type declarations give without ``?`` (stripe-python's
  ``Optional`` cannot tell "null" from "absent"; ``tests/stripe_presence.json``, made by
  ``scripts/stripe_presence.py``), or, for a type that file lacks, those stripe-python declares without
  ``Optional``; and at the top level every key of the resource's example in Stripe's ``fixtures3.json``.

Three ways in: ``assert_stripe_shape(x)`` for one object; ``checked_client(url)``, the SDK client whose every
successful answer is checked; and ``SHAPE_LEDGER``, which tests/conftest.py registers with the sandbox itself
(``stripe_sandbox.hooks.on_body``) so that every answer and every event payload of every in-process sandbox is
checked, whoever asked for it (Tally included), and fails the test during which it was produced.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, ForwardRef

import stripe
from stripe._error_object import ErrorObject
from stripe._http_client import HTTPClient, new_default_http_client
from stripe._list_object import ListObject
from stripe._object_classes import OBJECT_CLASSES
from stripe._stripe_object import StripeObject, UntypedStripeObject

ROOT = Path(__file__).resolve().parents[1]
FIXTURES_PATH = ROOT.parent / "shared" / "stripe-openapi" / "fixtures3.json"
PRESENCE_PATH = ROOT / "tests" / "stripe_presence.json"
SANDBOX_SOURCE = ROOT / "stripe_sandbox"

# Containers that hold objects but are not resources themselves.
_CONTAINERS = {"list", "search_result"}
# Partial objects by design: an event's old values of the fields that changed.
_PARTIAL = {"previous_attributes"}


@cache
def fixtures() -> dict[str, dict[str, Any]]:
    return json.loads(FIXTURES_PATH.read_text())["resources"]


@cache
def presence() -> dict[str, dict[str, list[str]]]:
    return json.loads(PRESENCE_PATH.read_text())


@cache
def sdk_class(object_type: str) -> type[StripeObject] | None:
    found = OBJECT_CLASSES.get(object_type)
    if found is None:
        return None
    module, name = found
    return getattr(importlib.import_module(module), name)


@cache
def _annotations(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        out.update(getattr(klass, "__annotations__", {}))
    return {k: v for k, v in out.items()
            if not k.isupper() and not k.startswith("_") and typing.get_origin(v) is not typing.ClassVar}


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation)


@cache
def _required(cls: type) -> frozenset[str]:
    """The fields an object of ``cls`` always carries (see the module's docstring)."""
    outer_name, _, nested = cls.__qualname__.partition(".")
    outer = getattr(importlib.import_module(cls.__module__), outer_name, None)
    object_type = getattr(outer, "OBJECT_NAME", None)
    present = presence().get(object_type or "", {}).get(nested)
    if present is not None:
        return frozenset(present) & set(_annotations(cls))
    return frozenset(name for name, annotation in _annotations(cls).items() if not _optional(annotation))


@cache
def _object_literals(cls: type) -> tuple[Any, ...] | None:
    annotation = _annotations(cls).get("object")
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None


@cache
def _resolve(ref: ForwardRef | str, owner: type) -> Any:
    name = ref.__forward_arg__ if isinstance(ref, ForwardRef) else ref
    module = importlib.import_module(owner.__module__)
    for namespace in (vars(module), vars(stripe)):
        if name in namespace:
            return namespace[name]
    # Several namespaces reuse a class name (``Product`` and ``climate.Product``): prefer the top-level one.
    candidates = sorted((mod.count("."), mod) for mod, cls_name in OBJECT_CLASSES.values() if cls_name == name)
    if candidates:
        return getattr(importlib.import_module(candidates[0][1]), name)
    return Any


# Object types checked so far in this process (for the report of types the suite never produced).
SEEN: set[str] = set()


def _problems(value: Any, annotation: Any, owner: type, path: str) -> list[str]:
    # keyed by identity: hashing a typing object hashes all its arguments (hundreds of literals) every time
    planned = _PLANS.get((id(annotation), owner))
    if planned is None:
        planned = _PLANS[(id(annotation), owner)] = (*_plan(annotation, owner), annotation)
    kind, detail, owner, _ = planned
    if kind == "union":
        return _union_problems(value, detail, owner, path)
    if kind == "any" or kind == "free":
        if kind == "free" and not isinstance(value, dict):
            return [f"{path}: {_short(value)} is not an object"]
        return _free_form(value, path)
    if value is None:
        return [f"{path}: null where {annotation!r} is declared"]
    if kind == "literal":
        return [] if value in detail else [f"{path}: {_short(value)} not one of {detail}"]
    if kind == "scalar":
        kinds, noun = detail
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        return [] if ok else [f"{path}: {_short(value)} is not {noun}"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: {_short(value)} is not an array"]
        return [p for i, v in enumerate(value) for p in _problems(v, detail, owner, f"{path}[{i}]")]
    if kind == "list_object":
        if not isinstance(value, dict) or value.get("object") != "list":
            return [f"{path}: not a list object"]
        items = enumerate(value.get("data", []))
        return [p for i, v in items for p in _problems(v, detail, owner, f"{path}.data[{i}]")]
    if kind == "class":
        if not isinstance(value, dict):
            return [f"{path}: {_short(value)} is not an object"]
        return _class_problems(value, detail, path)
    return []


# (id of annotation, owner) -> (kind, detail, owner, the annotation itself, kept alive so its id stays its own)
_PLANS: dict[tuple[int, type], tuple[str, Any, type, Any]] = {}


def _plan(annotation: Any, owner: type) -> tuple[str, Any, type]:
    """How to check a value against an annotation, worked out once per annotation: (kind, detail, owner)."""
    if annotation is Any:
        return "any", None, owner
    if isinstance(annotation, (ForwardRef, str)):
        return _plan(_resolve(annotation, owner), owner)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return "union", _union_options(args), owner
    if origin is typing.Literal:
        return "literal", args, owner
    if annotation in _SCALARS:
        return "scalar", _SCALARS[annotation], owner
    if origin in (list, typing.List):
        return "array", args[0] if args else Any, owner
    if origin in (dict, typing.Dict):
        return "free", None, owner
    cls = origin or annotation
    if isinstance(cls, type) and issubclass(cls, ListObject):
        return "list_object", args[0] if args else Any, owner
    if isinstance(cls, type) and issubclass(cls, UntypedStripeObject):  # a free-form map (e.g. metadata)
        return "free", None, owner
    if isinstance(cls, type) and issubclass(cls, StripeObject):
        return "class", cls, owner
    return "other", None, owner


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


_SCALARS: dict[Any, tuple[tuple[type, ...], str]] = {
    str: ((str,), "a string"), bool: ((bool,), "a boolean"), int: ((int,), "an integer"),
    float: ((int, float), "a number")}


def _union_options(args: tuple[Any, ...]) -> tuple[bool, tuple[tuple[Any, bool], ...]]:
    """(whether null is allowed, the other options each with whether it is a scalar)."""
    options = [a for a in args if a is not type(None)]
    if str in options and any(typing.get_origin(a) is typing.Literal for a in options):
        # ``Union[Literal[...], str]``: the SDK stays open to values of later API versions; this version's
        # answers hold one of the literals
        options.remove(str)
    scalar = [a in _SCALARS or typing.get_origin(a) is typing.Literal for a in options]
    return type(None) in args, tuple(zip(options, scalar))


def _union_problems(value: Any, detail: tuple[bool, tuple[tuple[Any, bool], ...]], owner: type,
                    path: str) -> list[str]:
    nullable, options = detail
    if value is None:
        return [] if nullable else [f"{path}: null where one of {[o for o, _ in options]} is declared"]
    attempts = []
    for option, scalar in options:
        found = _problems(value, option, owner, path)
        if not found:
            return []
        attempts.append((scalar and isinstance(value, (dict, list)), len(found), found))
    # an expanded object that fails is reported by its own problems, not as "not a string"
    return min(attempts, key=lambda a: a[:2])[2]


def _free_form(value: Any, path: str) -> list[str]:
    """A slot the SDK leaves untyped (an event's ``data.object``): a Stripe object in it is checked as one."""
    if isinstance(value, dict) and isinstance(value.get("object"), str) and "id" in value:
        return object_problems(value, path)
    return []


def _class_problems(data: dict[str, Any], cls: type, path: str) -> list[str]:
    literals = _object_literals(cls)
    if literals is not None and data.get("object") not in literals:
        return [f"{path}: object {data.get('object')!r} where {literals} is declared"]
    if data.get("deleted") is True and literals is not None:
        SEEN.add(data["object"])
        extra = set(data) - {"id", "object", "deleted"}
        return [f"{path}: a deleted object has {sorted(extra)}"] if extra else []
    table = _field_table(cls)
    keys = data.keys()
    problems = [f"{path}.{name}: missing" for name in sorted(_required(cls) - keys)] if _required(cls) - keys else []
    if keys - table.keys():
        problems += [f"{path}.{name}: not a field Stripe declares" for name in sorted(keys - table.keys())]
    for name, value in data.items():
        entry = table.get(name)
        if entry is None:
            continue
        annotation, fast_types, fast_values = entry
        kind = type(value)
        if fast_types is _ANY_TYPE or kind in fast_types or (kind is str and value in fast_values):
            continue  # the common case, decided without walking the annotation
        problems += _problems(value, annotation, cls, f"{path}.{name}")
    if literals is not None:
        SEEN.add(data["object"])
    return problems


_ANY_TYPE: frozenset[type] = frozenset({object})


@cache
def _field_table(cls: type) -> dict[str, tuple[Any, frozenset[type], frozenset[Any]]]:
    """Each checked field of ``cls``: its annotation, the Python types that need no further look (a scalar,
    null where allowed) and the string values that need none (a literal's values)."""
    table = {}
    for name, annotation in _annotations(cls).items():
        # a partial object is let through whole: every Python type needs no further look
        table[name] = (annotation, _ANY_TYPE, frozenset()) if name in _PARTIAL else (
            annotation, *_fast_path(annotation, cls))
    return table


def _fast_path(annotation: Any, owner: type) -> tuple[frozenset[type], frozenset[Any]]:
    kind, detail, owner = _plan(annotation, owner)
    options = [(a, None) for a in [annotation]] if kind != "union" else list(detail[1])
    types_ok: set[type] = {type(None)} if kind == "union" and detail[0] else set()
    values_ok: set[Any] = set()
    for option, _ in options:
        option_kind, option_detail, _ = _plan(option, owner)
        if option_kind == "scalar":
            types_ok.update(option_detail[0])
        elif option_kind == "literal":
            values_ok.update(v for v in option_detail if isinstance(v, str))
    return frozenset(types_ok), frozenset(values_ok)


def object_problems(data: dict[str, Any], path: str | None = None) -> list[str]:
    """What is wrong with one Stripe object (by its ``object`` type), nested objects included."""
    object_type = data.get("object")
    path = path or str(object_type)
    cls = sdk_class(object_type) if isinstance(object_type, str) else None
    if cls is None:
        return [f"{path}: {object_type!r} is not an object type Stripe has"]
    problems = _class_problems(data, cls, path)
    fixture = fixtures().get(object_type)
    if fixture is not None and data.get("deleted") is not True:
        problems += [f"{path}.{name}: missing (Stripe's example has it)" for name in sorted(set(fixture) - set(data))
                     if name in _annotations(cls) and name not in _required(cls)]
    return problems


def body_problems(body: Any) -> list[str]:
    """Every problem of every Stripe object in a JSON body: the body, or the items of a list or search result."""
    if isinstance(body, list):
        return [p for item in body for p in body_problems(item)]
    if not isinstance(body, dict):
        return []
    kind = body.get("object")
    if kind is None and isinstance(body.get("error"), dict):
        return _error_problems(body["error"])
    if kind in _CONTAINERS:
        return [p for i, item in enumerate(body.get("data", [])) for p in object_problems(item, f"{kind}.data[{i}]")]
    if isinstance(kind, str):
        return object_problems(body)
    return []


_ERROR_TYPES = ("api_error", "card_error", "idempotency_error", "invalid_request_error")


def _error_problems(error: dict[str, Any]) -> list[str]:
    """An error body as the SDK's ErrorObject declares it, with one of Stripe's error types."""
    problems = _class_problems(error, ErrorObject, "error")
    if error.get("type") not in _ERROR_TYPES:
        problems.append(f"error.type: {error.get('type')!r} not one of {_ERROR_TYPES}")
    return problems


def assert_stripe_shape(obj: Any, object_type: str | None = None) -> dict[str, Any]:
    """Assert that ``obj`` (a StripeObject returned by the SDK, whose raw body is checked, or a plain dict) and
    every object in it are shaped as Stripe's; returns the raw body."""
    if isinstance(obj, StripeObject):
        response = obj.last_response
        data = response.data if response is not None else obj.to_dict()
    else:
        data = obj
    if object_type is not None and isinstance(data, dict) and data.get("object") is None:
        data = {**data, "object": object_type}
    problems = body_problems(data)
    assert not problems, "not shaped as Stripe's:\n" + "\n".join(problems)
    return data


def check_body(body: Any) -> None:
    problems = body_problems(body)
    assert not problems, "not shaped as Stripe's:\n" + "\n".join(problems)


class ShapeLedger:
    """Checks bodies as the sandbox produces them and keeps every problem found, for the test runner to fail
    the test that was running (tests/conftest.py) and to report the object types never produced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.problems: list[str] = []
        self.checked = 0

    def check(self, where: str, body: Any) -> list[str]:
        found = [f"{where}: {p}" for p in body_problems(body)]
        with self._lock:
            self.checked += 1
            self.problems += found
        return found

    def mark(self) -> int:
        return len(self.problems)

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.problems[mark:]


SHAPE_LEDGER = ShapeLedger()
_OBJECT_LITERAL = re.compile(r"""["']object["']\s*:\s*["']([a-z_.]+)["']""")


def producible_types() -> set[str]:
    """Object types the sandbox's source builds (an ``"object": "..."`` literal), containers aside."""
    found = {m for source in SANDBOX_SOURCE.rglob("*.py") for m in _OBJECT_LITERAL.findall(source.read_text())}
    return {t for t in found if t in OBJECT_CLASSES} - _CONTAINERS


class ShapeCheckingHTTPClient(HTTPClient):
    """The SDK's default HTTP client, with ``check_body`` run on every 2xx JSON answer before the SDK sees it,
    so that a server other than an in-process sandbox (a sandbox in another process, a stand-in server) is
    checked too. The AssertionError is not an APIConnectionError, so the SDK neither retries nor wraps it."""

    name = "shape-checking"

    def __init__(self) -> None:
        super().__init__()
        self._inner = new_default_http_client()

    def request(self, method: str, url: str, headers: Any, post_data: Any = None,
                *, _usage: Any = None) -> tuple[Any, int, Any]:
        content, status, response_headers = self._inner.request(method, url, headers, post_data)
        if 200 <= status < 300 and response_headers.get("Stripe-Sandbox-Shape-Checked") != "true":
            check_body(json.loads(content))
        return content, status, response_headers

    def request_stream(self, method: str, url: str, headers: Any, post_data: Any = None,
                       *, _usage: Any = None) -> tuple[Any, int, Any]:
        return self._inner.request_stream(method, url, headers, post_data)

    def close(self) -> None:
        self._inner.close()


def checked_client(url: str, api_key: str = "sk_test_sandbox", **options: Any) -> stripe.StripeClient:
    """A StripeClient for the sandbox at ``url`` whose every successful answer is shape-checked."""
    options.setdefault("max_network_retries", 0)
    return stripe.StripeClient(api_key, base_addresses={"api": url}, http_client=ShapeCheckingHTTPClient(),
                               **options)
