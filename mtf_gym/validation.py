"""Checking user input, implemented once: every "X must be ..." error and the one ``KEY=VALUE`` parser.

Bad input gets a ``ValueError`` (or a subclass the caller names, e.g. the harness's ``PresetError``) whose message
names the parameter, what is allowed and what was given::

    RecipeConfig.sessions must be an integer >= 1, got 0
    ESConfig.sigma0 must be > 0, got -1.0

Pure Python, no optional dependency: every layer (``mtf_gym``, ``agents``, ``benchmarks``) uses it.
"""

from __future__ import annotations

import tomllib
from numbers import Integral
from typing import Any

__all__ = ["check", "check_int", "merge_nested", "must_be", "parse_key_value", "parse_value", "rows_and_keys"]


def must_be(name: str, allowed: str, value: object, *, owner: type | object | str | None = None,
            error: type[ValueError] = ValueError) -> ValueError:
    """The error ``"<owner>.<name> must be <allowed>, got <value!r>"`` (to raise; ``owner`` may be a class, an
    instance or a string, and is left out when ``None``)."""
    if owner is None:
        where = name
    else:
        owner_name = owner if isinstance(owner, str) else owner.__name__ if isinstance(owner, type) else (
            type(owner).__name__)
        where = f"{owner_name}.{name}" if owner_name else name
    return error(f"{where} must be {allowed}, got {value!r}")


def check(condition: bool, name: str, allowed: str, value: object, *, owner: type | object | str | None = None,
          error: type[ValueError] = ValueError) -> None:
    """Raise :func:`must_be`'s error unless ``condition`` holds."""
    if not condition:
        raise must_be(name, allowed, value, owner=owner, error=error)


def check_int(name: str, value: object, *, minimum: int | None = None, owner: type | object | str | None = None,
              error: type[ValueError] = ValueError) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool; NumPy integers count) ``>= minimum``."""
    allowed = "an integer" if minimum is None else f"an integer >= {minimum}"
    ok = isinstance(value, Integral) and not isinstance(value, bool) and (minimum is None or value >= minimum)
    check(ok, name, allowed, value, owner=owner, error=error)
    return int(value)  # type: ignore[arg-type]


def parse_key_value(text: str, *, option: str = "argument", hint: str = "",
                    error: type[ValueError] = ValueError) -> tuple[str, Any]:
    """``"max_requests=20"`` -> ``("max_requests", 20)``: the value is read as TOML (``500``, ``0.1``, ``true``,
    ``[1, 2]``, ``"x"``) and otherwise kept as the raw string; the key is stripped and must be non-empty.

    ``option`` names the command-line option in the error (e.g. ``"--env"``), ``hint`` says what the key is.
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise error(f"{option} expects KEY=VALUE{f' ({hint})' if hint else ''}, got {text!r}")
    return key, parse_value(raw)


def parse_value(text: str) -> Any:
    """A command-line value read as TOML (``500``, ``0.1``, ``true``, ``[1, 2]``, ``"x"``; Python's ``True`` and
    ``False`` too), else the stripped raw string."""
    raw = str(text).strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return {"True": True, "False": False}.get(raw, raw)


def merge_nested(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` laid over it: nested dicts merge key by key, anything else replaces (the way
    config overrides apply to a config's ``to_dict()``); neither argument is modified."""
    out = dict(base)
    for key, value in update.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_nested(out[key], value) if nested else value
    return out


def rows_and_keys(rows: Any, keys: Any, num_rows: int) -> tuple[Any, Any]:
    """A simulator's ``start_sessions`` arguments as contiguous int64 rows and uint64 keys, checked: 1-D, the same
    length, rows in ``[0, num_rows)``."""
    import numpy as np

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    if rows.shape != keys.shape or rows.ndim != 1:
        raise ValueError(f"rows and keys must be 1-D of the same length, got {rows.shape} and {keys.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= num_rows):
        raise ValueError(f"rows must be in [0, {num_rows}), got {rows}")
    return rows, keys
