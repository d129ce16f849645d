"""Validate a check's options against the dataclass its type declares.

Each field's type hint is the contract: ``str``, ``int``, ``float``, ``bool``,
``Duration``, ``Path`` (relative to the config file), ``list[...]``, ``dict[str, ...]``,
``Literal[...]``, ``X | None`` and a nested dataclass. A plugin whose ``Options`` uses
another type fails when it registers (``unsupported``), not when a user sets it.
A field without a default is required. A ``__post_init__`` may raise ``ConfigError``
for rules that span fields, and fill ``field(init=False)`` fields derived from the others.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

from vigil._api.errors import ConfigError
from vigil._kit.durations import Duration, parse_duration

#: A TOML table as read, or its keys as coerced so far: free-form until the dataclass
#: of its section (or of a plugin's options) is built from it.
Table = dict[str, Any]


class ItemError(ValueError):
    """A bad item of a list or table option: ``where`` is its place (``[1]``, ``.name``),
    for the key path of the error (``checks.web.tags[1]``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where

    @classmethod
    def at(cls, where: str, exc: ValueError) -> ItemError:
        inner = exc.where if isinstance(exc, ItemError) else ""
        return cls(where + inner, str(exc))


def key_of(key: str, exc: ValueError) -> str:
    """The key an error from ``coerce`` belongs to: the item's, for a list's or table's."""
    return key + exc.where if isinstance(exc, ItemError) else key


SUPPORTED = ("str, int, float, bool, Duration, Path, list[...], dict[str, ...], "
             "Literal[...], X | None, a dataclass")


def parse_options(cls: type, raw: Table, base: Path | None = None
                  ) -> tuple[Any, list[tuple[str, str]]]:
    """Build ``cls`` from ``raw`` (``base``: the config file's folder, for relative
    paths); returns (instance or None, [(key, message), ...])."""
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
            values[key] = coerce(hints[key], value, base)
        except ValueError as exc:
            errors.append((key_of(key, exc), str(exc)))
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and name not in raw:
            errors.append((name, "is required"))
    if errors:
        return None, errors
    try:
        return cls(**values), []
    except ConfigError as exc:
        return None, exc.problems
    except Exception as exc:  # the plugin's own rule, in its own words: not a traceback
        return None, [("", f"{cls.__name__} rejected these options: "
                           f"{type(exc).__name__}: {exc}")]


def coerce(hint: Any, value: Any, base: Path | None = None) -> Any:
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
                return coerce(choice, value, base)
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
        return [_item(args, f"[{i}]", item, base) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {_show(value)}")
        return {name: _item(args[1:], f".{name}", item, base) for name, item in value.items()}
    if hint is Duration:
        return parse_duration(value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a path, got {_show(value)}")
        return (base or Path.cwd()) / os.path.expanduser(value)
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
        instance, errors = parse_options(hint, value, base)
        if errors:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in errors))
        return instance
    raise ValueError(f"expected {getattr(hint, '__name__', hint)}, got {_show(value)}")


def _item(args: tuple[Any, ...], where: str, value: Any, base: Path | None) -> Any:
    """One item of a list or table option, as its type says (any, untyped); its error
    says where it is."""
    if not args:
        return value
    try:
        return coerce(args[0], value, base)
    except ValueError as exc:
        raise ItemError.at(where, exc) from None


def unsupported(cls: type) -> str | None:
    """The first field of the dataclass ``cls`` whose type ``coerce`` cannot read, said
    for the plugin's author; None when every one is readable."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # a name the annotations use that cannot be found
        return f"the types of {cls.__name__}'s fields cannot be read: {exc}"
    for name, hint in hints.items():
        if name in {f.name for f in dataclasses.fields(cls) if f.init} and not _readable(hint):
            return (f"{cls.__name__}.{name} is typed {getattr(hint, '__name__', hint)}, "
                    f"which vigil cannot read from a config file (it reads {SUPPORTED})")
    return None


def _readable(hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType, list):
        return all(_readable(a) for a in args if a is not type(None))
    if origin is dict:
        return not args or (args[0] is str and _readable(args[1]))
    if origin is typing.Literal:
        return True
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return unsupported(hint) is None
    return hint in (str, int, float, bool, Duration, Path, Any, type(None))


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _show(value: Any) -> str:
    kind = {str: "string", int: "integer", float: "number", bool: "boolean",
            list: "list", dict: "table"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}"
