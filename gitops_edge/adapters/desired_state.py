"""Load the desired state from a checkout: find stacks, read files, call the pure core.

This is the file-system half of the Compose loader: it finds stack
directories, enforces that nothing (subpath, symlinks, env files, bind
sources) leads out of the repository, reads ``.env`` and hands plain data to
``gitops_edge.core.compose``. The device's own process environment is NOT
used for interpolation unless passed explicitly: Git-controlled config must
not pick up whatever happens to be set on a device.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from pathlib import Path

from gitops_edge.adapters.yaml_reader import MAX_FILE_BYTES, read_yaml_file
from gitops_edge.core.compose import StackErrors, build_stack
from gitops_edge.core.compose.dotenv import DotenvError, parse_dotenv
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.config import DeviceConfig
from gitops_edge.model.spec import DesiredState, StackSpec

COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def load_desired_state(
    checkout_root: Path,
    subpath: str,
    revision: str,
    environ: Mapping[str, str] | None = None,
    device: DeviceConfig | None = None,
) -> DesiredState:
    """Every stack under ``checkout_root/subpath`` (with fleet.yaml: the stacks ``device`` gets).

    Raises the first DesiredStateError; a ``StackErrors`` carrying all
    problems found when more than one stack or line is wrong.
    """
    stacks, errors = _load_all(checkout_root, subpath, environ, device)
    if errors:
        raise StackErrors(errors)
    return DesiredState(revision=revision, stacks=tuple(stacks))


def validate_tree(
    path: Path, subpath: str = ".", environ: Mapping[str, str] | None = None, device: DeviceConfig | None = None
) -> list[DesiredStateError]:
    """Every problem in a desired-state tree (``path`` is the repository root).

    With fleet.yaml and no ``device``: every stack and every override directory.
    """
    return _load_all(path, subpath, environ, device, validate=True)[1]


def find_stack_dirs(checkout_root: Path, subpath: str) -> list[Path]:
    """Immediate sub-directories of ``subpath`` that hold a compose file, sorted."""
    root = _root(checkout_root)
    base = _inside(root, _subpath(subpath), "desired-state path")
    if not base.is_dir():
        raise DesiredStateError(f"desired-state path {subpath!r} is not a directory",
                                Location(_subpath(subpath)))
    out = []
    for child in sorted(base.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        if any((child / n).exists() or (child / n).is_symlink() for n in COMPOSE_FILE_NAMES):
            out.append(child)
    return out


def load_stack(
    checkout_root: Path, stack_dir: Path, environ: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> StackSpec:
    """One stack directory (absolute, or relative to ``checkout_root``) to StackSpec.

    ``env``, when given, is the complete interpolation environment (fleet
    targeting layered it already); otherwise the stack's ``.env`` under ``environ``.
    """
    root = _root(checkout_root)
    directory = stack_dir if stack_dir.is_absolute() else root / stack_dir
    rel_dir = _rel(root, directory)
    _inside(root, rel_dir, "stack directory")
    compose_rel = _compose_file(root, rel_dir)
    if env is None:
        env = _interpolation_env(root, rel_dir, environ or {})
    doc = read_yaml_file(_inside(root, compose_rel, "compose file"), compose_rel)
    spec = build_stack(
        doc.data,
        doc.lines,
        name=posixpath.basename(rel_dir),
        stack_dir=rel_dir,
        compose_file=compose_rel,
        root=str(root),
        env=env,
        read_text=lambda rel: _read_text(root, rel),
    )
    _check_bind_symlinks(root, spec)
    return spec


def _load_all(
    checkout_root: Path, subpath: str, environ: Mapping[str, str] | None, device: DeviceConfig | None,
    validate: bool = False,
) -> tuple[list[StackSpec], list[DesiredStateError]]:
    from gitops_edge.adapters import fleet_state  # it builds on this module

    if fleet_state.has_fleet(checkout_root):
        if device is None and validate:
            return fleet_state.validate_fleet(checkout_root, subpath, environ)
        if device is None:
            return [], [DesiredStateError("fleet.yaml targets stacks by device, but no device identity was given",
                                          Location("fleet.yaml"))]
        found, problems = fleet_state.load_for_device(checkout_root, subpath, device, environ)
        return found, problems + _container_name_clashes(found)
    stacks: list[StackSpec] = []
    errors: list[DesiredStateError] = []
    try:
        dirs = find_stack_dirs(checkout_root, subpath)
    except DesiredStateError as exc:
        return [], [exc]
    for directory in dirs:
        try:
            stacks.append(load_stack(checkout_root, directory, environ))
        except StackErrors as exc:
            errors.extend(exc.errors)
        except DesiredStateError as exc:
            errors.append(exc)
    errors.extend(_container_name_clashes(stacks))
    return stacks, errors


def _container_name_clashes(stacks: list[StackSpec]) -> list[DesiredStateError]:
    """``container_name`` is global on a Docker host: two stacks may not share one."""
    seen: dict[str, str] = {}
    out = []
    for st in stacks:
        for svc in st.services:
            if svc.container_name is None:
                continue
            where = f"{st.name}/{svc.name}"
            if svc.container_name in seen:
                out.append(DesiredStateError(
                    f"container_name {svc.container_name!r} is also used by {seen[svc.container_name]}",
                    Location(st.compose_file, None, f"services.{svc.name}.container_name"),
                ))
            seen.setdefault(svc.container_name, where)
    return out


def _root(checkout_root: Path) -> Path:
    return Path(os.path.abspath(checkout_root))


def _subpath(subpath: str) -> str:
    rel = posixpath.normpath(subpath.replace(os.sep, "/") or ".")
    if posixpath.isabs(rel) or rel == ".." or rel.startswith("../"):
        raise DesiredStateError(f"desired-state path {subpath!r} leaves the repository",
                                Location(subpath))
    return rel


def _rel(root: Path, path: Path) -> str:
    rel = posixpath.normpath(os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/"))
    if rel == ".." or rel.startswith("../"):
        raise DesiredStateError("stack directory is outside the repository", Location(str(path)))
    return rel


def _inside(root: Path, rel: str, what: str) -> Path:
    """``root/rel``, refusing it when symlinks resolve it outside the repository."""
    path = root / rel
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise DesiredStateError(f"{what} is a symlink that leads out of the repository",
                                Location(rel))
    return path


def _compose_file(root: Path, rel_dir: str) -> str:
    found = [n for n in COMPOSE_FILE_NAMES
             if (root / rel_dir / n).exists() or (root / rel_dir / n).is_symlink()]
    if not found:
        raise DesiredStateError(f"no compose file (one of {', '.join(COMPOSE_FILE_NAMES)})",
                                Location(rel_dir))
    if len(found) > 1:
        raise DesiredStateError(
            f"several compose files in one stack: {', '.join(found)}; keep exactly one",
            Location(posixpath.join(rel_dir, found[1])),
        )
    return posixpath.join(rel_dir, found[0]) if rel_dir != "." else found[0]


def _interpolation_env(root: Path, rel_dir: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The stack's ``.env`` under any explicitly given variables (which win, as in Compose)."""
    rel = posixpath.normpath(posixpath.join(rel_dir, ".env"))
    text = _read_text(root, rel)
    if text is None:
        return dict(environ)
    try:
        values = parse_dotenv(text, environ)
    except DotenvError as exc:
        raise DesiredStateError(str(exc), Location(rel, exc.line)) from None
    return {**values, **environ}


def _read_text(root: Path, rel: str) -> str | None:
    """A repo-relative text file, ``None`` if absent; symlinks may not leave the repo."""
    path = root / rel
    if not path.exists() and not path.is_symlink():
        return None
    path = _inside(root, rel, "file")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DesiredStateError(f"file is larger than the {MAX_FILE_BYTES}-byte limit",
                                    Location(rel))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DesiredStateError(f"cannot read file: {exc}", Location(rel)) from None


def _check_bind_symlinks(root: Path, spec: StackSpec) -> None:
    """A bind source inside the checkout must not reach outside it through a symlink."""
    real_root = os.path.realpath(root)
    prefix = str(root) + os.sep
    for svc in spec.services:
        for i, mount in enumerate(svc.mounts):
            if mount.type != "bind" or mount.source is None:
                continue
            if not mount.source.startswith(prefix):
                continue
            real = os.path.realpath(mount.source)
            if real != real_root and not real.startswith(real_root + os.sep):
                raise DesiredStateError(
                    "bind source is a symlink that leads out of the repository",
                    Location(spec.compose_file, None, f"services.{svc.name}.volumes[{i}]"),
                )
