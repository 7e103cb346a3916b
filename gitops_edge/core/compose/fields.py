"""Typed readers for Compose values: check a type, report where it is wrong.

Each reader returns the converted value, or ``None`` after recording a
problem, so one pass can report every error in a file. Scalars written as
strings are accepted where Compose accepts them (``"3"`` for an integer,
``"true"`` for a boolean), because interpolation always yields strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.core.compose.units import parse_duration, parse_size

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def scalar_text(value: object) -> str:
    """A scalar as Compose prints it in a string context (``true``, ``1.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def check_keys(
    p: Problems,
    path: KeyPath,
    obj: Mapping[str, Any],
    allowed: Iterable[str],
    unsupported: Iterable[str] | Mapping[str, str] = (),
) -> None:
    """Report keys Compose does not know, and known ones gitops-edge refuses (saying why, when
    ``unsupported`` maps each key to its reason)."""
    allowed_set = set(allowed)
    reasons = dict(unsupported) if isinstance(unsupported, Mapping) else dict.fromkeys(unsupported, "")
    for key in obj:
        if key in allowed_set or key.startswith("x-"):
            continue
        if key in reasons:
            why = f": {reasons[key]}" if reasons[key] else ""
            p.add((*path, key), f"{key!r} is not supported by gitops-edge{why}")
        else:
            p.add((*path, key), f"unknown key {key!r}")


def as_mapping(p: Problems, path: KeyPath, value: object) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    p.add(path, f"must be a mapping, not a {type_name(value)}")
    return None


def as_str(p: Problems, path: KeyPath, value: object) -> str | None:
    if isinstance(value, str):
        return value
    p.add(path, f"must be a string, not a {type_name(value)}")
    return None


def as_text(p: Problems, path: KeyPath, value: object) -> str | None:
    """A string, or a number Compose would accept as its string form."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return scalar_text(value)
    p.add(path, f"must be a string, not a {type_name(value)}")
    return None


def as_bool(p: Problems, path: KeyPath, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    p.add(path, f"must be a boolean, not {value!r}")
    return None


def as_int(p: Problems, path: KeyPath, value: object, minimum: int | None = None) -> int | None:
    result: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        result = int(value.strip())
    if result is None:
        p.add(path, f"must be an integer, not {value!r}")
        return None
    if minimum is not None and result < minimum:
        p.add(path, f"must be at least {minimum}, not {result}")
        return None
    return result


def as_float(p: Problems, path: KeyPath, value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    p.add(path, f"must be a number, not {value!r}")
    return None


def as_str_list(p: Problems, path: KeyPath, value: object) -> tuple[str, ...] | None:
    """A list of strings (numbers accepted as text)."""
    if not isinstance(value, list):
        p.add(path, f"must be a list, not a {type_name(value)}")
        return None
    out: list[str] = []
    for i, item in enumerate(value):
        text = as_text(p, (*path, i), item)
        if text is not None:
            out.append(text)
    return tuple(out)


def as_str_or_list(p: Problems, path: KeyPath, value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    return as_str_list(p, path, value)


def as_dict_or_list(
    p: Problems, path: KeyPath, value: object, sep: str = "="
) -> dict[str, str | None] | None:
    """Compose's "list_or_dict": ``[K=V, K]`` or ``{K: V}``; ``None`` means no value.

    Values in the mapping form may be any scalar and become their text.
    """
    out: dict[str, str | None] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                out[key] = None
            elif is_scalar(item):
                out[key] = scalar_text(item)
            else:
                p.add((*path, key), f"must be a string, number or boolean, not a {type_name(item)}")
        return out
    if isinstance(value, list):
        for i, item in enumerate(value):
            text = as_text(p, (*path, i), item)
            if text is None:
                continue
            key, found, val = text.partition(sep)
            if not key:
                p.add((*path, i), f"invalid entry {text!r}")
                continue
            if key in out:
                p.add((*path, i), f"duplicate entry {key!r}")
            out[key] = val if found else None
        return out
    p.add(path, f"must be a list or a mapping, not a {type_name(value)}")
    return None


def as_duration(p: Problems, path: KeyPath, value: object) -> int | None:
    if not isinstance(value, str):
        p.add(path, f"must be a duration string such as '30s', not {value!r}")
        return None
    try:
        return parse_duration(value)
    except ValueError:
        p.add(path, f"invalid duration {value!r} (use e.g. '1m30s', '500ms')")
        return None


def as_size(p: Problems, path: KeyPath, value: object) -> int | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return parse_size(value)
        except ValueError:
            pass
    p.add(path, f"invalid size {value!r} (use e.g. '512m', '1g', or bytes)")
    return None
