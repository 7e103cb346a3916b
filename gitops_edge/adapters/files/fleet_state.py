"""The file-system half of targeting (docs/fleet.md): read fleet.yaml, override dirs, build stacks.

``core.fleet`` decides which stacks and override directories a device gets;
this module reads them (never outside the repository), layers the values
(stack ``.env`` < groups in fleet.yaml order < device) and hands the result
to the same stack loader a plain repository uses.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from gitops_edge.adapters.files.stack_files import (
    VALIDATION_SECRETS,
    find_stack_dirs,
    inside,
    load_stack,
    read_text,
    repo_root,
    safe_subpath,
    secret_lookup,
)
from gitops_edge.adapters.files.yaml_reader import read_yaml_file
from gitops_edge.core.compose import StackErrors
from gitops_edge.core.compose.configs import SecretFile
from gitops_edge.core.compose.dotenv import DotenvError, parse_dotenv
from gitops_edge.core.fleet import (
    DEVICES_DIR,
    DOTENV_FILE,
    FLEET_FILE,
    GROUPS_DIR,
    OVERRIDE_FILES,
    STACKS_DIR,
    VALUES_FILE,
    Fleet,
    Selection,
    check_same_dir,
    merge_values,
    parse_fleet,
    parse_values,
    select,
)
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.config import DeviceConfig
from gitops_edge.model.spec import StackSpec

Values = dict[str, tuple[str, str]]  # NAME -> (value, source file)
ENVIRONMENT = "<environment>"
T = TypeVar("T")


@dataclass(frozen=True)
class ResolvedStack:
    """A stack a device gets and the interpolation values it is built with."""

    name: str
    compose_dir: str
    values: Values


def has_fleet(checkout_root: Path) -> bool:
    path = repo_root(checkout_root) / FLEET_FILE
    return path.is_file() or path.is_symlink()


def read_fleet(checkout_root: Path, subpath: str = ".") -> Fleet:
    """fleet.yaml, parsed; with it the stacks live under stacks/, so source.path must be ``.``."""
    root = repo_root(checkout_root)
    if safe_subpath(subpath) != ".":
        raise DesiredStateError(
            f"the repository has {FLEET_FILE}, so stacks are targeted by it: source.path must be '.' "
            f"(it is {subpath!r})", Location(FLEET_FILE))
    doc = read_yaml_file(inside(root, FLEET_FILE, FLEET_FILE), FLEET_FILE)
    fleet = parse_fleet(doc.data, doc.lines)
    missing = [(n, doc.lines.get(("stacks", n))) for n in fleet.stack_names()
               if not (root / STACKS_DIR / n).is_dir()]
    if missing:
        raise StackErrors(DesiredStateError(f"no stack directory {STACKS_DIR}/{n}/", Location(FLEET_FILE, line,
                                                                                             f"stacks.{n}"))
                          for n, line in missing)
    return fleet


def resolve(checkout_root: Path, fleet: Fleet, device: DeviceConfig,
            environ: Mapping[str, str] | None = None) -> tuple[list[ResolvedStack], list[DesiredStateError]]:
    """The stacks ``device`` gets with their layered values, and every problem reading them."""
    root = repo_root(checkout_root)
    out: list[ResolvedStack] = []
    errors: list[DesiredStateError] = []
    for sel in select(fleet, device):
        try:
            out.append(ResolvedStack(sel.stack, sel.stack_dir, stack_values(root, sel, environ or {})))
        except StackErrors as exc:
            errors.extend(exc.errors)
        except DesiredStateError as exc:
            errors.append(exc)
    return out, errors


def load_for_device(checkout_root: Path, subpath: str, device: DeviceConfig,
                    environ: Mapping[str, str] | None) -> tuple[list[StackSpec], list[DesiredStateError]]:
    """The stacks one device runs, built with its values."""
    try:
        fleet = read_fleet(checkout_root, subpath)
    except StackErrors as exc:
        return [], list(exc.errors)
    except DesiredStateError as exc:
        return [], [exc]
    resolved, errors = resolve(checkout_root, fleet, device, environ)
    stacks = []
    for r in resolved:
        spec = _build(checkout_root, r.compose_dir, r.values, errors, secret_lookup(device))
        if spec is not None:
            stacks.append(spec)
    return stacks, errors


def validate_fleet(checkout_root: Path, subpath: str,
                   environ: Mapping[str, str] | None) -> tuple[list[StackSpec], list[DesiredStateError]]:
    """Every stack under stacks/ on its own, and every override directory applied to its stack."""
    root = repo_root(checkout_root)
    try:
        fleet = read_fleet(root, subpath)
    except StackErrors as exc:
        return [], list(exc.errors)
    except DesiredStateError as exc:
        return [], [exc]
    errors: list[DesiredStateError] = []
    stacks = []
    try:
        dirs = find_stack_dirs(root, STACKS_DIR) if (root / STACKS_DIR).is_dir() else []
    except DesiredStateError as exc:
        return [], [exc]
    for d in dirs:
        sel = Selection(d.name, f"{STACKS_DIR}/{d.name}", ())
        values = _safe(partial(stack_values, root, sel, environ or {}), errors)
        spec = _build(root, sel.stack_dir, values, errors) if values is not None else None
        if spec is not None:
            stacks.append(spec)
    for layer, stack in _override_dirs(root, fleet, errors):
        sel = Selection(stack, f"{STACKS_DIR}/{stack}", (layer,))
        values = _safe(partial(stack_values, root, sel, environ or {}), errors)
        if values is not None:
            _build(root, sel.stack_dir, values, errors)
    return stacks, errors


def stack_values(root: Path, sel: Selection, environ: Mapping[str, str]) -> Values:
    """Stack ``.env`` < each override layer (``.env`` then ``values.yaml``) < explicit environ."""
    layers: list[tuple[str, Mapping[str, str]]] = []
    flat: dict[str, str] = {}

    def add(source: str, values: Mapping[str, str]) -> None:
        layers.append((source, values))
        flat.update(values)

    add(*_dotenv(root, sel.stack_dir, {**flat, **environ}))
    for layer in sel.layers:
        path = root / layer
        if not path.exists():
            continue
        _check_override_dir(root, layer)
        dotenv_source, dotenv = _dotenv(root, layer, {**flat, **environ})
        add(dotenv_source, dotenv)
        values_source, values, lines = _values_yaml(root, layer)
        same = check_same_dir(dotenv, values, layer, lines)
        if same:
            raise StackErrors(same)
        add(values_source, values)
    add(ENVIRONMENT, dict(environ))
    return merge_values(layers)


def _dotenv(root: Path, directory: str, lookup: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    rel = posixpath.join(directory, DOTENV_FILE)
    text = read_text(root, rel)
    if text is None:
        return rel, {}
    try:
        return rel, parse_dotenv(text, lookup)
    except DotenvError as exc:
        raise DesiredStateError(str(exc), Location(rel, exc.line)) from None


def _values_yaml(root: Path, directory: str) -> tuple[str, dict[str, str], Mapping[tuple[str | int, ...], int]]:
    rel = posixpath.join(directory, VALUES_FILE)
    path = root / rel
    if not path.exists() and not path.is_symlink():
        return rel, {}, {}
    doc = read_yaml_file(inside(root, rel, VALUES_FILE), rel)
    return rel, parse_values(doc.data, doc.lines, rel), doc.lines


def _check_override_dir(root: Path, layer: str) -> None:
    path = inside(root, layer, "override directory")
    if not path.is_dir():
        raise DesiredStateError("an override must be a directory holding .env and/or values.yaml", Location(layer))
    unknown = sorted(p.name for p in path.iterdir() if p.name not in OVERRIDE_FILES)
    if unknown:
        raise DesiredStateError(
            f"unknown file {unknown[0]!r} in an override directory (allowed: {', '.join(OVERRIDE_FILES)})",
            Location(posixpath.join(layer, unknown[0])))


def _override_dirs(root: Path, fleet: Fleet, errors: list[DesiredStateError]) -> list[tuple[str, str]]:
    """(layer dir, stack) for every groups/<g>/<stack> and devices/<id>/<stack>; unknown names are errors."""
    out = []
    for top in (GROUPS_DIR, DEVICES_DIR):
        base = root / top
        if not base.is_dir():
            continue
        for owner in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if top == GROUPS_DIR and owner.name not in fleet.group_names():
                errors.append(DesiredStateError(f"group {owner.name!r} is not declared under groups: in "
                                                f"{FLEET_FILE}", Location(f"{top}/{owner.name}")))
                continue
            for d in sorted(p for p in owner.iterdir() if not p.name.startswith(".")):
                layer = f"{top}/{owner.name}/{d.name}"
                if d.name not in fleet.stack_names():
                    errors.append(DesiredStateError(f"stack {d.name!r} is not listed under stacks: in {FLEET_FILE}",
                                                    Location(layer)))
                else:
                    out.append((layer, d.name))
    return out


def _build(root: Path, compose_dir: str, values: Values, errors: list[DesiredStateError],
           secrets: SecretFile | None = VALIDATION_SECRETS) -> StackSpec | None:
    env = {name: value for name, (value, _) in values.items()}
    return _safe(lambda: load_stack(root, Path(compose_dir), env=env, secrets=secrets), errors)


def _safe(fn: Callable[[], T], errors: list[DesiredStateError]) -> T | None:
    """``fn()``, or None with its problems added to ``errors``."""
    try:
        return fn()
    except StackErrors as exc:
        errors.extend(exc.errors)
    except DesiredStateError as exc:
        errors.append(exc)
    return None
