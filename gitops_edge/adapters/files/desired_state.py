"""Load the desired state from a checkout: find stacks, read files, call the pure core.

This is the file-system half of the Compose loader: it finds stack
directories, enforces that nothing (subpath, symlinks, env files, bind
sources) leads out of the repository, reads ``.env`` and hands plain data to
``gitops_edge.core.compose``. The device's own process environment is NOT
used for interpolation unless passed explicitly: Git-controlled config must
not pick up whatever happens to be set on a device.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from gitops_edge.adapters.files import fleet_state
from gitops_edge.adapters.files.stack_files import VALIDATION_SECRETS, find_stack_dirs, load_stack, secret_lookup
from gitops_edge.core.compose import StackErrors
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.config import DeviceConfig
from gitops_edge.model.spec import DesiredState, StackSpec


def load_desired_state(
    checkout_root: Path,
    subpath: str,
    revision: str,
    environ: Mapping[str, str] | None = None,
    device: DeviceConfig | None = None,
) -> DesiredState:
    """Every stack under ``checkout_root/subpath`` (with fleet.yaml: the stacks ``device`` gets).

    Raises a ``StackErrors`` carrying every problem found. When each problem
    lies inside one stack's directory it also carries the valid stacks
    (``partial``) and the problems by stack, so one broken stack holds no other back.
    """
    stacks, errors = _load_all(checkout_root, subpath, environ, device)
    if errors:
        by_stack = _by_stack(errors)
        if by_stack is None:
            raise StackErrors(errors)
        valid = tuple(st for st in stacks if st.name not in by_stack)
        raise StackErrors(errors, partial=DesiredState(revision=revision, stacks=valid), by_stack=by_stack)
    return DesiredState(revision=revision, stacks=tuple(stacks))


def _by_stack(errors: list[DesiredStateError]) -> dict[str, list[DesiredStateError]] | None:
    """Each problem by the stack directory its file lies in; None if one is not in a stack's directory."""
    out: dict[str, list[DesiredStateError]] = {}
    for err in errors:
        if err.location is None:
            return None
        file = PurePosixPath(err.location.file)
        if file.parent.name in ("", ".") or file.name == "fleet.yaml":
            return None
        parent = file.parent
        out.setdefault(parent.name, []).append(err)
    return out


def validate_tree(
    path: Path, subpath: str = ".", environ: Mapping[str, str] | None = None, device: DeviceConfig | None = None
) -> list[DesiredStateError]:
    """Every problem in a desired-state tree (``path`` is the repository root).

    With fleet.yaml and no ``device``: every stack and every override directory.
    """
    return _load_all(path, subpath, environ, device, validate=True)[1]


def _load_all(
    checkout_root: Path, subpath: str, environ: Mapping[str, str] | None, device: DeviceConfig | None,
    validate: bool = False,
) -> tuple[list[StackSpec], list[DesiredStateError]]:
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
    secrets = secret_lookup(device) if device is not None else VALIDATION_SECRETS
    try:
        dirs = find_stack_dirs(checkout_root, subpath)
    except DesiredStateError as exc:
        return [], [exc]
    for directory in dirs:
        try:
            stacks.append(load_stack(checkout_root, directory, environ, secrets=secrets))
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
