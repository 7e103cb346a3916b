"""Canonical JSON for specs: stored per applied revision, hashed, diffed.

Round-trips exactly, so a stack can be rebuilt from the state store for a
manual rollback without the Git checkout of that revision.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_origin, get_type_hints

if TYPE_CHECKING:  # built on first use: ``status`` reads a stored stack without the spec model
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


@functools.cache
def _fields(tp: type) -> tuple[tuple[str, Any], ...]:
    """(name, resolved type) of a dataclass's fields: ``get_type_hints`` is slow, types do not change."""
    hints = get_type_hints(tp)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(tp))


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
        kwargs = {name: _build(hint, data[name]) for name, hint in _fields(tp) if name in data}
        return tp(**kwargs)
    return data


def from_data(tp: type[T], data: Any) -> T:
    return typing.cast(T, _build(tp, data))


def stack_to_json(stack: StackSpec) -> str:
    return canonical_json(stack)


def stack_from_json(text: str) -> StackSpec:
    from gitops_edge.model.spec import StackSpec

    return from_data(StackSpec, json.loads(text))


def stack_services_from_json(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the services expected to run: every one not scaled to 0 replicas; the services another waits
    for to complete) of a stored stack, read from the same canonical JSON without building the
    spec: what the status of a stack needs."""
    services = json.loads(text).get("services") or ()
    names = tuple(str(s["name"]) for s in services if s.get("replicas", 1) > 0)
    one_shot = tuple(str(d["service"]) for s in services for d in s.get("depends_on") or ()
                     if d.get("condition") == "service_completed_successfully")
    return names, one_shot
