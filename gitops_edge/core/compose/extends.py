"""``extends``: a service built on another one, merged with Compose's rules.

The base is a service of the same file (``extends: web``) or of another file
in the repository (``extends: {service: web, file: base.yaml}``), itself
possibly extending another. Merging follows the Compose specification:
mappings merge key by key (``environment``/``labels``-style lists are read
as mappings first), ``command``/``entrypoint``/``healthcheck.test`` and
scalars are replaced, ``ports``/``volumes``/``devices`` merge by their
container side, other sequences are appended without duplicates. Relative
paths of a base from another file resolve against that file's directory.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops_edge.core.compose.interpolate import InterpolationError, interpolate
from gitops_edge.core.compose.paths import PathEscapeError, repo_relative
from gitops_edge.core.compose.problems import KeyPath, LineMap, Problems
from gitops_edge.errors import DesiredStateError


@dataclass(frozen=True)
class ComposeDoc:
    """A parsed compose file as the adapter reads it (plain data and the line of each key)."""

    data: Mapping[str, Any]
    lines: LineMap


ReadCompose = Callable[[str], ComposeDoc]
"""Reads and parses a repo-relative compose file (the adapter confines it to the repository)."""

MAX_DEPTH = 16
_REPLACED = frozenset({"command", "entrypoint"})
_KEYED_LISTS = frozenset({"environment", "labels", "annotations", "sysctls", "storage_opt"})
_MAPPINGS = frozenset({"depends_on", "networks", "ulimits", "healthcheck", "deploy", "build",
                       "blkio_config", "logging", "extra_hosts"})  # extra_hosts: when written as mappings
_APPENDED = frozenset({"post_start", "pre_stop"})  # hooks: every entry runs, repeats too (as Compose)
_BY_TARGET = frozenset({"ports", "volumes", "devices", "secrets", "configs"})


@dataclass(frozen=True)
class _Source:
    p: Problems
    services: Mapping[str, Any]
    directory: str


def resolve_extends(
    p: Problems, services: Mapping[str, Any], directory: str, env: Mapping[str, str],
    read_compose: ReadCompose | None,
) -> dict[str, Any]:
    """``services`` with every ``extends`` replaced by the merged definition.

    A service whose base cannot be resolved is left out (its error recorded).
    """
    here = _Source(p, services, directory)
    out = {}
    for name, raw in services.items():
        before = len(p.errors)
        merged = _resolve(here, name, raw, env, read_compose, (f"{p.file}:{name}",))
        if len(p.errors) == before:
            out[name] = merged
    return out


def _resolve(
    src: _Source, name: str, raw: Any, env: Mapping[str, str], read: ReadCompose | None,
    chain: tuple[str, ...],
) -> Any:
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    where: KeyPath = ("services", name, "extends")
    ext = raw["extends"]
    base_name, base_file = (ext, None) if isinstance(ext, str) else (
        (ext.get("service"), ext.get("file")) if isinstance(ext, dict) else (None, None))
    if isinstance(ext, dict) and set(ext) - {"service", "file"}:
        src.p.add(where, f"unknown key {sorted(set(ext) - {'service', 'file'})[0]!r}")
    if not isinstance(base_name, str) or not base_name:
        src.p.add(where, "must name a service (extends: NAME or extends: {service: NAME, file: PATH})")
        return None
    base_src = src
    if base_file is not None:
        loaded = _other_file(src, where, base_file, env, read)
        if loaded is None:
            return None
        base_src = loaded
    key = f"{base_src.p.file}:{base_name}"
    if key in chain or len(chain) > MAX_DEPTH:
        src.p.add(where, f"extends cycle: {' -> '.join((*chain, key))}")
        return None
    if base_name not in base_src.services:
        src.p.add(where, f"extends undefined service {base_name!r}" +
                  (f" of {base_src.p.file}" if base_file is not None else ""))
        return None
    base = _resolve(base_src, base_name, base_src.services[base_name], env, read, (*chain, key))
    if not isinstance(base, dict):
        if base is not None:
            base_src.p.add(("services", base_name), "must be a mapping")
        return None
    if base_src.directory != src.directory:
        base = _rebase(base, base_src.directory, src.directory)
    own = {k: v for k, v in raw.items() if k != "extends"}
    return merge_service(base, own)


def _other_file(
    src: _Source, where: KeyPath, raw_file: object, env: Mapping[str, str], read: ReadCompose | None
) -> _Source | None:
    if not isinstance(raw_file, str) or not raw_file:
        src.p.add((*where, "file"), "must be a path")
        return None
    try:
        rel = repo_relative(src.directory, raw_file)
    except PathEscapeError as exc:
        src.p.add((*where, "file"), f"extends: {exc}")
        return None
    if read is None:
        src.p.add((*where, "file"), "extends from another file is not available here")
        return None
    try:
        doc = read(rel)
    except DesiredStateError as exc:  # missing, unreadable, bad YAML, a symlink out of the repository
        src.p.add((*where, "file"), f"{rel}: {exc.message}")
        return None
    other = Problems(rel, doc.lines)
    data = _interpolated(other, doc.data, env)
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        src.p.add((*where, "file"), f"{rel} has no services")
        return None
    if other.errors:
        src.p.extend(other.errors)
        return None
    return _Source(other, services, posixpath.dirname(rel) or ".")


def _interpolated(p: Problems, value: Any, env: Mapping[str, str], path: KeyPath = ()) -> Any:
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except InterpolationError as exc:
            p.add(path, str(exc))
            return value
    if isinstance(value, dict):
        return {k: _interpolated(p, v, env, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(p, v, env, (*path, i)) for i, v in enumerate(value)]
    return value


def merge_service(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """``own`` on top of ``base``, key by key, with the specification's merge rules."""
    out = dict(base)
    for key, value in own.items():
        if key not in out or key in _REPLACED or value is None or out[key] is None:
            out[key] = value
        elif key in _KEYED_LISTS:
            out[key] = {**_as_map(out[key]), **_as_map(value)}
        elif key in ("depends_on", "networks"):
            out[key] = _merge_maps(_names_map(out[key]), _names_map(value))
        elif key == "logging" and isinstance(value, dict) and isinstance(out[key], dict):
            same = value.get("driver") in (None, out[key].get("driver"))
            out[key] = _merge_maps(out[key], value) if same else value
        elif key in _MAPPINGS and isinstance(value, dict) and isinstance(out[key], dict):
            merged = _merge_maps(out[key], value)
            if key == "healthcheck" and "test" in value:
                merged["test"] = value["test"]
            out[key] = merged
        elif key in _BY_TARGET and isinstance(value, list) and isinstance(out[key], list):
            out[key] = _by_target(key, out[key], value)
        elif key in _APPENDED and isinstance(value, list) and isinstance(out[key], list):
            out[key] = [*out[key], *value]
        elif isinstance(value, list) and isinstance(out[key], list):
            out[key] = [*out[key], *(v for v in value if v not in out[key])]
        else:
            out[key] = value
    return out


def _merge_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge_maps(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value if isinstance(value, list) else []:
        key, found, val = str(item).partition("=")
        out[key] = val if found else None
    return out


def _names_map(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {str(v): None for v in value}
    return dict(value) if isinstance(value, dict) else {}


def _by_target(key: str, base: list[Any], own: list[Any]) -> list[Any]:
    """Entries of ``own`` replace those of ``base`` with the same container side, in place."""
    theirs = {_target(key, item): item for item in own}
    out = [theirs.pop(_target(key, item), item) for item in base]
    return [*out, *(item for item in own if _target(key, item) in theirs)]


def _target(key: str, item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target") or item.get("source") or item)
    text = str(item)
    if key in ("secrets", "configs"):
        return text
    if key == "ports":
        return text  # identical short-syntax entries collapse; others add up, as in Compose
    parts = text.split(":")
    return posixpath.normpath(parts[1]) if len(parts) > 1 else posixpath.normpath(parts[0])


def _rebase(service: dict[str, Any], base_dir: str, directory: str) -> dict[str, Any]:
    """Make the base's relative paths relative to ``directory`` (the extending file's)."""
    prefix = posixpath.relpath(base_dir, directory)

    def move(path: str) -> str:
        if posixpath.isabs(path) or path.startswith("~"):
            return path
        moved = posixpath.normpath(posixpath.join(prefix, path))
        return moved if moved.startswith(".") else "./" + moved  # still reads as a path, not a volume

    out = dict(service)
    if isinstance(out.get("volumes"), list):
        vols: list[Any] = []
        for item in out["volumes"]:
            if isinstance(item, str) and item.startswith("."):
                src, sep, rest = item.partition(":")
                vols.append(move(src) + sep + rest)
            elif isinstance(item, dict) and item.get("type") == "bind" and isinstance(item.get("source"), str):
                vols.append({**item, "source": move(item["source"])})
            else:
                vols.append(item)
        out["volumes"] = vols
    env_file = out.get("env_file")
    if isinstance(env_file, str):
        out["env_file"] = move(env_file)
    elif isinstance(env_file, list):
        out["env_file"] = [move(e) if isinstance(e, str) else
                           ({**e, "path": move(e["path"])} if isinstance(e, dict) and isinstance(e.get("path"), str)
                            else e) for e in env_file]
    return out
