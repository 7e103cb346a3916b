"""Canonical JSON for specs: stored per applied revision, hashed, diffed.

Round-trips exactly, so a stack can be rebuilt from the state store for a
manual rollback without the Git checkout of that revision.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from gitops_edge.model.spec import StackSpec

T = TypeVar("T")


def to_data(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    return value


def canonical_json(value: object) -> str:
    return json.dumps(to_data(value), sort_keys=True, separators=(",", ":"))


def _build(tp: Any, data: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            return None
        return _build(args[0], data)
    if origin is tuple:
        items = get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_build(items[0], v) for v in data)
        return tuple(_build(a, v) for a, v in zip(items, data, strict=True))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        kwargs = {f.name: _build(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data}
        return tp(**kwargs)
    return data


def from_data(tp: type[T], data: Any) -> T:
    return typing.cast(T, _build(tp, data))


def stack_to_json(stack: StackSpec) -> str:
    return canonical_json(stack)


def stack_from_json(text: str) -> StackSpec:
    return from_data(StackSpec, json.loads(text))
