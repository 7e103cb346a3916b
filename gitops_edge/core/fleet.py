"""Targeting (docs/fleet.md): which stacks a device runs and which value layers fill their ``${NAME}``s.

A repository with ``fleet.yaml`` at its root keeps every stack once under
``stacks/<name>/`` and maps stacks to devices by label selectors, instead of
copying compose files per device. Everything here is pure: the adapter reads
the files and hands over plain data with its line map.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from gitops_edge.core.compose import StackErrors
from gitops_edge.core.compose.problems import KeyPath, LineMap, Problems
from gitops_edge.core.labels import ID_KEY as ID_KEY
from gitops_edge.core.labels import scalar_text as scalar_text
from gitops_edge.errors import DesiredStateError
from gitops_edge.model.config import DeviceConfig

FLEET_FILE = "fleet.yaml"
STACKS_DIR = "stacks"
GROUPS_DIR = "groups"
DEVICES_DIR = "devices"
DOTENV_FILE = ".env"
VALUES_FILE = "values.yaml"
OVERRIDE_FILES = (DOTENV_FILE, VALUES_FILE)

Selector = tuple[tuple[str, tuple[str, ...]], ...]
"""Key -> glob patterns; every key must match (AND), any pattern of a key (OR)."""

_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VALUE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_WORDS = ("PASSWORD", "PASSWD", "TOKEN", "SECRET", "KEY", "CREDENTIAL")
MASK = "****"


@dataclass(frozen=True)
class Target:
    """A stack or group of fleet.yaml with the devices its selector picks."""

    name: str
    selector: Selector


@dataclass(frozen=True)
class Fleet:
    stacks: tuple[Target, ...]
    groups: tuple[Target, ...] = ()

    def stack_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.stacks)

    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)


@dataclass(frozen=True)
class Selection:
    """One stack a device gets, and its override directories from lowest to highest precedence."""

    stack: str
    stack_dir: str  # repo-relative, e.g. stacks/web
    layers: tuple[str, ...]  # repo-relative, e.g. (groups/gpu/web, devices/sensor-7/web)


def parse_fleet(data: Mapping[str, Any], lines: LineMap, file: str = FLEET_FILE) -> Fleet:
    """fleet.yaml's data to a Fleet; raises ``StackErrors`` listing every problem."""
    from gitops_edge.core.compose.stack import is_project_name  # the loader, not the agent config parser

    p = Problems(file, lines)
    for key in data:
        if key not in ("stacks", "groups"):
            p.add((key,), "unknown key (allowed: groups, stacks)")
    stacks: list[Target] = []
    raw_stacks = data.get("stacks")
    if not isinstance(raw_stacks, dict):
        p.add(("stacks",), "'stacks' is required: a mapping of stack name to {devices: selector}")
        raw_stacks = {}
    for name, entry in raw_stacks.items():
        path: KeyPath = ("stacks", name)
        if not is_project_name(name):
            p.add(path, f"stack name {name!r} is not a valid Compose project name "
                        "(lowercase letters, digits, '_' and '-')")
        if not isinstance(entry, dict) or "devices" not in entry:
            p.add(path, "must be {devices: selector} (use {devices: {}} for every device)")
            continue
        for key in entry:
            if key != "devices":
                p.add((*path, key), "unknown key (allowed: devices)")
        stacks.append(Target(name, _selector(p, (*path, "devices"), entry["devices"])))
    groups: list[Target] = []
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        p.add(("groups",), "must be a mapping of group name to selector")
        raw_groups = {}
    for name, sel in raw_groups.items():
        if not _GROUP_NAME.match(name):
            p.add(("groups", name), f"group name {name!r} must be letters, digits, '_', '.' and '-'")
        groups.append(Target(name, _selector(p, ("groups", name), sel)))
    p.raise_if_any()
    return Fleet(tuple(stacks), tuple(groups))


def _selector(p: Problems, path: KeyPath, raw: object) -> Selector:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        p.add(path, "a selector must be a mapping of label: pattern or [patterns] ({} matches every device)")
        return ()
    out = []
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        texts = [scalar_text(v) for v in values]
        if not values:
            p.add((*path, key), "an empty list matches no device")
        elif any(t is None for t in texts):
            p.add((*path, key), "must be a string pattern or a list of them")
            continue
        out.append((key, tuple(t for t in texts if t is not None)))
    return tuple(out)


def matches(selector: Selector, device: DeviceConfig) -> bool:
    """Every key matches (a missing label never does); a key matches if any of its globs does."""
    labels = dict(device.labels)
    for key, patterns in selector:
        actual = device.id if key == ID_KEY else labels.get(key)
        if actual is None or not any(fnmatchcase(actual, pat) for pat in patterns):
            return False
    return True


def select(fleet: Fleet, device: DeviceConfig) -> list[Selection]:
    """The stacks ``device`` runs, in fleet.yaml order, each with its override directories."""
    groups = [g.name for g in fleet.groups if matches(g.selector, device)]
    device_dir = device.id if is_path_segment(device.id) else None
    out = []
    for st in fleet.stacks:
        if not matches(st.selector, device):
            continue
        layers = [f"{GROUPS_DIR}/{g}/{st.name}" for g in groups]
        if device_dir is not None:
            layers.append(f"{DEVICES_DIR}/{device_dir}/{st.name}")
        out.append(Selection(st.name, f"{STACKS_DIR}/{st.name}", tuple(layers)))
    return out


def is_path_segment(name: str) -> bool:
    """A device id names a directory only if it is one plain path segment."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def parse_values(data: Mapping[str, Any], lines: LineMap, file: str) -> dict[str, str]:
    """A values.yaml: a flat mapping of NAME: scalar; raises ``StackErrors`` on any problem."""
    p = Problems(file, lines)
    out: dict[str, str] = {}
    for name, value in data.items():
        text = scalar_text(value)
        if not _VALUE_NAME.match(name):
            p.add((name,), f"invalid variable name {name!r} (letters, digits and '_')")
        elif text is None:
            p.add((name,), "must be a string, number or boolean")
        else:
            out[name] = text
    p.raise_if_any()
    return out


def merge_values(layers: Sequence[tuple[str, Mapping[str, str]]]) -> dict[str, tuple[str, str]]:
    """NAME -> (value, source file); later layers win."""
    out: dict[str, tuple[str, str]] = {}
    for source, values in layers:
        for name, value in values.items():
            out[name] = (value, source)
    return out


def check_same_dir(dotenv: Mapping[str, str], values: Mapping[str, str], directory: str,
                   lines: LineMap) -> list[DesiredStateError]:
    """A name set in both files of one override directory is ambiguous: refuse it."""
    p = Problems(f"{directory}/{VALUES_FILE}", lines)
    for name in values:
        if name in dotenv:
            p.add((name,), f"{name} is also set in {directory}/{DOTENV_FILE}; set it in one file only")
    return p.errors


def is_secret_name(name: str) -> bool:
    """Names that look like they hold a secret; their values are never printed."""
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)


def display_value(name: str, value: str) -> str:
    return MASK if is_secret_name(name) else value


__all__ = [
    "FLEET_FILE",
    "Fleet",
    "Selection",
    "StackErrors",
    "Target",
    "check_same_dir",
    "display_value",
    "is_secret_name",
    "matches",
    "merge_values",
    "parse_fleet",
    "parse_values",
    "scalar_text",
    "select",
]
