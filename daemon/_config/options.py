"""Validate a check's options against the dataclass its type declares.

Each field's type hint is the contract: ``str``, ``int``, ``float``, ``bool``,
``Duration``, ``list[...]``, ``dict[str, ...]``, ``Literal[...]`` and ``X | None``.
A field without a default is required. A ``__post_init__`` may raise ``ConfigError``
for rules that span fields, and fill ``field(init=False)`` fields derived from the others.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from vigil._api.errors import ConfigError
from vigil._kit.durations import Duration, parse_duration

#: A TOML table as read, or its keys as coerced so far: free-form until the dataclass
#: of its section (or of a plugin's options) is built from it.
Table = dict[str, Any]


def parse_options(cls: type, raw: Table) -> tuple[Any, list[tuple[str, str]]]:
    """Build ``cls`` from ``raw``; returns (instance or None, [(key, message), ...])."""
    # Fields with init=False are derived in __post_init__, never set from config.
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    errors: list[tuple[str, str]] = []
    values: Table = {}
    for key, value in raw.items():
        if key not in fields:
            errors.append((key, f"unknown option (known: {', '.join(sorted(fields)) or 'none'})"))
            continue
        try:
            values[key] = coerce(hints[key], value)
        except ValueError as exc:
            errors.append((key, str(exc)))
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and name not in raw:
            errors.append((name, "is required"))
    if errors:
        return None, errors
    try:
        return cls(**values), []
    except ConfigError as exc:
        return None, [(exc.key, exc.message)]
    except Exception as exc:  # the plugin's own rule, in its own words: not a traceback
        return None, [("", f"{cls.__name__} rejected these options: "
                           f"{type(exc).__name__}: {exc}")]


def coerce(hint: Any, value: Any) -> Any:
    """``value`` as ``hint``, or ValueError saying what was expected."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        choices = [a for a in args if a is not type(None)]
        messages = []
        for choice in choices:
            try:
                return coerce(choice, value)
            except ValueError as exc:
                messages.append(str(exc))
        raise ValueError(" or ".join(messages))
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {_show(value)}")
        return [coerce(args[0], item) for item in value] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {_show(value)}")
        return {k: coerce(args[1], v) for k, v in value.items()} if args else dict(value)
    if hint is Duration:
        return parse_duration(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool):
        # bool is an int in Python, but `port = true` is a mistake, not 1.
        if isinstance(value, hint) and not (hint is not bool and isinstance(value, bool)):
            return value
        raise ValueError(f"expected {_NAMES[hint]}, got {_show(value)}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        instance, errors = parse_options(hint, value)
        if errors:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in errors))
        return instance
    raise ValueError(f"expected {getattr(hint, '__name__', hint)}, got {_show(value)}")


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _show(value: Any) -> str:
    kind = {str: "string", int: "integer", float: "number", bool: "boolean",
            list: "list", dict: "table"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}"
