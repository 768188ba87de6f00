"""Reading a TOML settings file (the catalog, the plans) into a pydantic model: every wrong field is reported, one
line each, with the file and the key (``catalog.toml: packs[2] (pro).amount: amounts must be positive``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from .. import currency as money

M = TypeVar("M", bound=pydantic.BaseModel)


class FileModel(pydantic.BaseModel):
    """A table of the file: unknown keys are refused (a typo would otherwise be silently ignored), and values
    keep their TOML type (``"499"`` is not an amount, ``true`` is not a count)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


def read_toml(path: Path | str, what: str, error: type[ValueError]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read the {what} {path}: {exc.strerror}") from None


def parse_toml(text: str, model: type[M], *, source: str, error: type[ValueError]) -> M:
    """``text`` as ``model``, or ``error`` listing every wrong field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise error("\n".join(f"{source}: {_where(e['loc'], data)}: {_message(e)}" for e in exc.errors())) from None


def currency_code(value: str) -> str:
    """A currency field: lower-case ISO 4217 (``CurrencyError``, a ValueError, becomes the field's error)."""
    return money.normalize(value)


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """``packs[2] (pro).amount``: the key, with the entry's id when it has one."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts[-1] += f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts[-1] += f" ({node['id']})"
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "(file)"


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (a typo?)"
    if error["type"] == "missing":
        return "required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
