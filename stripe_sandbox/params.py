"""Typed access to request parameters, raising Stripe's errors for missing or malformed ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import invalid_request, missing_param

_MISSING = object()


class Params:
    """A request's decoded parameters. Values arrive as strings (form encoding) or nested dicts/lists."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def _value(self, key: str, required: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or (required and value == ""):
            if required:
                raise missing_param(self._name(key))
            return _MISSING
        return value

    def str(self, key: str, default: str | None = None, *, required: bool = False,
            choices: Iterable[str] | None = None, max_length: int = 5000) -> str | None:
        value = self._value(key, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise invalid_request(f"Invalid string: {self._name(key)} must be a string.", param=self._name(key))
        if len(value) > max_length:
            raise invalid_request(
                f"Invalid string: {self._name(key)} must be at most {max_length} characters.", param=self._name(key))
        if choices is not None and value not in choices:
            allowed = ", ".join(f"`{c}`" for c in choices)
            raise invalid_request(
                f"Invalid {self._name(key)}: must be one of {allowed}", param=self._name(key))
        return value

    def optional_str(self, key: str) -> str | None:
        """A string where an empty value means "unset"."""
        value = self.str(key)
        return value or None

    def int(self, key: str, default: int | None = None, *, required: bool = False,
            minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self._value(key, required)
        if value is _MISSING or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise invalid_request(f"Invalid integer: {value}", param=self._name(key)) from None
        if minimum is not None and number < minimum:
            raise invalid_request(
                f"Invalid {self._name(key)}: must be at least {minimum}", param=self._name(key))
        if maximum is not None and number > maximum:
            raise invalid_request(
                f"Invalid {self._name(key)}: must be at most {maximum}", param=self._name(key))
        return number

    def bool(self, key: str, default: bool | None = None) -> bool | None:
        value = self._value(key, False)
        if value is _MISSING or value == "":
            return default
        if value in ("true", True):
            return True
        if value in ("false", False):
            return False
        raise invalid_request(f"Invalid boolean: {value}", param=self._name(key))

    def dict(self, key: str, *, required: bool = False) -> Params | None:
        value = self._value(key, required)
        if value is _MISSING or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid hash: {self._name(key)} must be an object.", param=self._name(key))
        return Params(value, self._name(key))

    def list(self, key: str, *, required: bool = False) -> list[Any]:
        value = self._value(key, required)
        if value is _MISSING or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise invalid_request(f"Invalid array: {self._name(key)} must be an array.", param=self._name(key))
        return value

    def str_list(self, key: str, *, required: bool = False) -> list[str]:
        items = self.list(key, required=required)
        for item in items:
            if not isinstance(item, str):
                raise invalid_request(f"Invalid array: {self._name(key)} must hold strings.", param=self._name(key))
        return items

    def dict_list(self, key: str, *, required: bool = False) -> list[Params]:
        items = self.list(key, required=required)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise invalid_request(
                    f"Invalid array: {self._name(key)}[{i}] must be an object.", param=f"{self._name(key)}[{i}]")
            out.append(Params(item, f"{self._name(key)}[{i}]"))
        return out

    def only(self, *allowed: str) -> Params:
        """Refuse nested keys that are not among ``allowed``."""
        for key in self.data:
            if key not in allowed:
                raise invalid_request(
                    f"Received unknown parameter: {self._name(key)}", param=self._name(key), code="parameter_unknown")
        return self


def merge_metadata(current: dict[str, str] | None, update: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's metadata rules: keys merge, an empty value deletes a key, an empty string clears all."""
    result = dict(current or {})
    if update is None:
        return result
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise invalid_request("Invalid metadata: metadata must be an object.", param=param)
    if len(update) > 50:
        raise invalid_request("Invalid metadata: at most 50 keys.", param=param)
    for key, value in update.items():
        if not isinstance(value, str):
            raise invalid_request(f"Invalid metadata value for {key}.", param=f"{param}[{key}]")
        if len(key) > 40 or len(value) > 500:
            raise invalid_request(
                "Metadata keys are at most 40 characters and values at most 500.", param=f"{param}[{key}]")
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    return result
