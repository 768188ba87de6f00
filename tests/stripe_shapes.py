"""One check for every Stripe-shaped body: the sandbox must answer what Stripe answers.

``assert_stripe_shape(x)`` takes a StripeObject returned by the SDK (its raw response body is checked) or a
plain dict (e.g. a webhook event's ``data.object``) and asserts that
- it has every top-level key of the fixture of its resource in Stripe's ``fixtures3.json``, and no key that
  neither the fixture nor the SDK's resource class knows;
- every field the SDK's resource class declares has the declared JSON type (recursively through the nested
  classes the SDK declares, and through expanded objects).

``checked_client(url)`` is the SDK client every sandbox test uses: its HTTP client runs ``check_body`` on
every successful response, so each object in it (the object itself, list items, expanded objects, an event's
``data.object``) is checked without the test asking, and a bad body fails the test that received it.
"""

from __future__ import annotations

import importlib
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, ForwardRef

import stripe
from stripe._http_client import HTTPClient, new_default_http_client
from stripe._list_object import ListObject
from stripe._object_classes import OBJECT_CLASSES
from stripe._stripe_object import StripeObject

FIXTURES_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "stripe-openapi" / "fixtures3.json"


@cache
def fixtures() -> dict[str, dict[str, Any]]:
    return json.loads(FIXTURES_PATH.read_text())["resources"]


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
    return {k: v for k, v in out.items() if not k.isupper() and typing.get_origin(v) is not typing.ClassVar}


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


def _problems(value: Any, annotation: Any, owner: type, path: str) -> list[str]:
    if annotation is Any:
        return []
    if isinstance(annotation, (ForwardRef, str)):
        return _problems(value, _resolve(annotation, owner), owner, path)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        options = [a for a in args if a is not type(None)]
        attempts = [_problems(value, a, owner, path) for a in options]
        if any(not a for a in attempts):
            return []
        return min(attempts, key=len)
    if value is None:
        return [f"{path}: null where {annotation!r} is declared"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not one of {args}"]
    if annotation is str:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if annotation is bool:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return []
        return [f"{path}: {value!r} is not an integer"]
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if origin in (list, typing.List):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not an array"]
        return [p for i, item in enumerate(value) for p in _problems(item, args[0] if args else Any, owner,
                                                                      f"{path}[{i}]")]
    if origin in (dict, typing.Dict):
        return [] if isinstance(value, dict) else [f"{path}: {value!r} is not an object"]
    cls = origin or annotation
    if isinstance(cls, type) and issubclass(cls, ListObject):
        if not isinstance(value, dict) or value.get("object") != "list":
            return [f"{path}: not a list object"]
        item = args[0] if args else Any
        return [p for i, obj in enumerate(value.get("data", [])) for p in _problems(obj, item, owner,
                                                                                   f"{path}.data[{i}]")]
    if isinstance(cls, type) and issubclass(cls, StripeObject):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        if origin is not None:  # UntypedStripeObject[T]: a free-form map
            return []
        return _fields(value, cls, path)
    return []


def _fields(data: dict[str, Any], cls: type, path: str) -> list[str]:
    problems = []
    for name, annotation in _annotations(cls).items():
        if name in data:
            problems += _problems(data[name], annotation, cls, f"{path}.{name}")
    return problems


def assert_stripe_shape(obj: Any, object_type: str | None = None) -> dict[str, Any]:
    if isinstance(obj, StripeObject):
        response = obj.last_response
        data = response.data if response is not None else obj.to_dict()
    else:
        data = obj
    if isinstance(data, dict) and data.get("object") == "list" and object_type is None:
        for item in data["data"]:
            assert_stripe_shape(item)
        return data
    object_type = object_type or data.get("object")
    assert object_type, f"no object type in {data!r}"
    if data.get("deleted") is True:
        assert set(data) == {"id", "object", "deleted"}, data
        return data
    fixture = fixtures()[object_type]
    cls = sdk_class(object_type)
    assert cls is not None, f"the SDK has no class for {object_type}"
    declared = set(_annotations(cls))
    missing = set(fixture) - set(data)
    unknown = set(data) - set(fixture) - declared
    assert not missing, f"{object_type} lacks Stripe's keys {sorted(missing)}"
    assert not unknown, f"{object_type} has keys Stripe does not know: {sorted(unknown)}"
    problems = _fields(data, cls, object_type)
    assert not problems, f"{object_type} has wrong types:\n" + "\n".join(problems)
    return data


# Containers that hold objects but are not resources themselves.
_CONTAINERS = {"list", "search_result"}


def check_body(body: Any) -> None:
    """Assert the shape of every Stripe object inside a response body (the body too, if it is one).
    ``previous_attributes`` of events hold partial objects on purpose and are skipped."""
    if isinstance(body, list):
        for item in body:
            check_body(item)
        return
    if not isinstance(body, dict):
        return
    kind = body.get("object")
    if isinstance(kind, str) and kind not in _CONTAINERS:
        assert kind in fixtures() or body.get("deleted") is True, f"{kind!r} is not an object type Stripe has"
        assert_stripe_shape(body)
    for name, value in body.items():
        if name != "previous_attributes":
            check_body(value)


class ShapeCheckingHTTPClient(HTTPClient):
    """The SDK's default HTTP client, with ``check_body`` run on every 2xx JSON answer before the SDK sees it.
    The AssertionError is not an APIConnectionError, so the SDK neither retries nor wraps it."""

    name = "shape-checking"

    def __init__(self) -> None:
        super().__init__()
        self._inner = new_default_http_client()

    def request(self, method: str, url: str, headers: Any, post_data: Any = None,
                *, _usage: Any = None) -> tuple[Any, int, Any]:
        content, status, response_headers = self._inner.request(method, url, headers, post_data)
        if 200 <= status < 300:
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
