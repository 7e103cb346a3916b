"""A whole compose file to StackSpec: interpolate, validate, normalize, cross-check.

The directory name is the Compose project name. A top-level ``name:`` is
accepted only when it equals it: ``docker compose`` run by hand in that
directory would otherwise manage a different project than the agent does.
Services with ``profiles`` are validated but active only when
``COMPOSE_PROFILES`` (from the stack's ``.env``) enables one of them, as
``docker compose config`` treats them; like Compose,
the stack keeps only the networks and volumes its active services use
(unused ones are still validated).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_edge.core.compose.configs import SecretFile, declare
from gitops_edge.core.compose.configs import merge as merge_declared
from gitops_edge.core.compose.extends import ReadCompose, resolve_extends
from gitops_edge.core.compose.fields import as_mapping, check_keys
from gitops_edge.core.compose.graph import find_cycle
from gitops_edge.core.compose.interpolate import InterpolationError, interpolate
from gitops_edge.core.compose.mounts import MountContext
from gitops_edge.core.compose.problems import KeyPath, LineMap, Problems, StackErrors
from gitops_edge.core.compose.resources import build_networks, build_volumes, declared_keys
from gitops_edge.core.compose.service import ReadText, ServiceContext, build_service
from gitops_edge.model.spec import NetworkSpec, ServiceSpec, StackSpec, VolumeSpec

TOP_LEVEL_KEYS = ("version", "name", "services", "networks", "volumes", "include", "configs", "secrets")
UNSUPPORTED_TOP_LEVEL_KEYS = {"models": "it needs Docker Model Runner"}
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def is_project_name(name: str) -> bool:
    """Compose's rule: lowercase letters, digits, ``_`` and ``-``, not leading."""
    return bool(_PROJECT_NAME.match(name))


@dataclass(frozen=True)
class IncludedFile:
    """A file named by ``include:``, read by the adapter (already confined to the repository).

    ``env`` is its interpolation environment: its ``env_file`` (default: the
    ``.env`` beside it) under the including project's variables, as Compose
    layers them; relative paths in it resolve against ``directory``.
    """

    data: Mapping[str, Any]
    lines: LineMap
    file: str  # repo-relative
    directory: str  # repo-relative
    env: Mapping[str, str]


@dataclass
class _Unit:
    """One file of the project (the stack's own or an included one) being built."""

    p: Problems
    data: dict[str, Any]
    directory: str
    env: Mapping[str, str]
    services: dict[str, Any]


def build_stack(
    doc: Mapping[str, Any],
    lines: LineMap,
    *,
    name: str,
    stack_dir: str,
    compose_file: str,
    root: str,
    env: Mapping[str, str],
    read_text: ReadText,
    includes: Sequence[IncludedFile] = (),
    read_compose: ReadCompose | None = None,
    secret_file: SecretFile | None = None,
    home: str | None = None,
) -> StackSpec:
    """Normalize one parsed compose file; raises ``StackErrors`` listing every problem.

    ``stack_dir`` and ``compose_file`` are repo-relative; ``root`` is the
    absolute checkout root that bind sources resolve into; ``env`` holds the
    interpolation variables; ``read_text`` reads repo-relative files (env_file);
    ``includes`` are the files its ``include:`` names, merged in as Compose does
    (a service, network or volume defined twice is an error); ``read_compose``
    reads the other files ``extends`` names; ``home`` is the agent user's home
    directory, where a ``~`` bind source points; ``secret_file`` finds a secret
    on the device (``None``: the device has no secrets directory).
    """
    p = Problems(compose_file, lines)
    data = interpolate_tree(p, (), doc, env)
    assert isinstance(data, dict)
    check_keys(p, (), data, TOP_LEVEL_KEYS, UNSUPPORTED_TOP_LEVEL_KEYS)
    if not is_project_name(name):
        p.add((), f"stack directory name {name!r} is not a valid Compose project name "
                   "(lowercase letters, digits, '_' and '-')")
    if data.get("name") is not None and data["name"] != name:
        p.add(("name",), f"project name {data['name']!r} differs from the stack directory "
                         f"name {name!r}; remove it or make them equal")
    raw_services = data.get("services")
    if raw_services is None and not includes:
        p.add((), "'services' is required")
    units = [_unit(p, data, stack_dir, env)]
    for inc in includes:
        ip = Problems(inc.file, inc.lines)
        inc_data = interpolate_tree(ip, (), inc.data, inc.env)
        assert isinstance(inc_data, dict)
        check_keys(ip, (), inc_data, TOP_LEVEL_KEYS, UNSUPPORTED_TOP_LEVEL_KEYS)
        units.append(_unit(ip, inc_data, inc.directory, inc.env))
    _check_duplicates(p, units)
    all_services = {n for u in units for n in u.services}
    for unit in units:
        unit.services = resolve_extends(unit.p, unit.services, unit.directory, unit.env, read_compose)
    networks_declared = {k for u in units for k in declared_keys(u.data.get("networks"))} | {"default"}
    volumes_declared = {k for u in units for k in declared_keys(u.data.get("volumes"))}
    declared = merge_declared([declare(u.p, u.data, root, u.directory, u.env, secret_file) for u in units])
    built: dict[str, ServiceSpec] = {}
    for unit in units:
        ctx = ServiceContext(
            mounts=MountContext(root, unit.directory, volumes_declared, home),
            env=unit.env,
            read_text=read_text,
            networks=networks_declared,
            services=all_services,
            declared=declared,
        )
        for svc_name, raw in unit.services.items():
            if not _SERVICE_NAME.match(svc_name):
                unit.p.add(("services", svc_name), f"invalid service name {svc_name!r}")
            spec = build_service(unit.p, svc_name, raw, ctx)
            if spec is not None:
                built[svc_name] = spec
    owner = {n: u.p for u in units for n in u.services}  # errors name the file defining the service
    _check_cycles(p, built, owner)
    enabled = enabled_profiles(env)
    active = {n: s for n, s in built.items() if is_active(s, enabled)}
    _check_inactive_refs(p, built, active, owner)
    used_nets = {a.network for s in active.values() for a in s.networks}
    used_vols = {m.source for s in active.values() for m in s.mounts if m.type == "volume"}
    networks: list[NetworkSpec] = []
    volumes: list[VolumeSpec] = []
    for i, unit in enumerate(units):
        networks += build_networks(unit.p, name, unit.data.get("networks"), i == 0 and "default" in used_nets)
        volumes += build_volumes(unit.p, name, unit.data.get("volumes"), unit.directory, root)
    errors = [e for u in units for e in u.p.errors]
    if errors:
        raise StackErrors(errors)
    return StackSpec(
        name=name,
        path=stack_dir,
        compose_file=compose_file,
        services=tuple(active[k] for k in sorted(active)),
        networks=tuple(sorted((n for n in networks if n.key in used_nets), key=lambda n: n.key)),
        volumes=tuple(sorted((v for v in volumes if v.key in used_vols), key=lambda v: v.key)),
    )


def _unit(p: Problems, data: dict[str, Any], directory: str, env: Mapping[str, str]) -> _Unit:
    services = as_mapping(p, ("services",), data.get("services") or {}) or {}
    return _Unit(p, data, directory, env, {k: v for k, v in services.items() if not k.startswith("x-")})


def _check_duplicates(p: Problems, units: Sequence[_Unit]) -> None:
    """An included file may not redefine what another file of the project defines."""
    seen: dict[tuple[str, str], str] = {}
    for unit in units:
        for section in ("services", "networks", "volumes", "configs", "secrets"):
            keys = unit.services if section == "services" else declared_keys(unit.data.get(section))
            for key in keys:
                where = seen.setdefault((section, key), unit.p.file)
                if where != unit.p.file:
                    unit.p.add((section, key), f"{section}.{key} is also defined in {where}")


def enabled_profiles(env: Mapping[str, str]) -> frozenset[str]:
    """``COMPOSE_PROFILES`` (from the stack's ``.env``), comma-separated as Compose reads it."""
    return frozenset(filter(None, (x.strip() for x in env.get("COMPOSE_PROFILES", "").split(","))))


def is_active(svc: ServiceSpec, enabled: frozenset[str]) -> bool:
    """No profiles, one enabled profile, or ``*`` enabling them all."""
    return not svc.profiles or "*" in enabled or bool(enabled.intersection(svc.profiles))


def interpolate_tree(p: Problems, path: KeyPath, value: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (never keys), as Compose does before validation."""
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except InterpolationError as exc:
            p.add(path, str(exc))
            return value
    if isinstance(value, dict):
        return {k: interpolate_tree(p, (*path, k), v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_tree(p, (*path, i), v, env) for i, v in enumerate(value)]
    return value


def _check_cycles(p: Problems, services: Mapping[str, ServiceSpec], owner: Mapping[str, Problems]) -> None:
    edges = {n: [d.service for d in s.depends_on] for n, s in services.items()}
    cycle = find_cycle(edges)
    if cycle is not None:
        owner.get(cycle[0], p).add(("services", cycle[0], "depends_on"),
              f"dependency cycle: {' -> '.join(cycle)}")


def _check_inactive_refs(
    p: Problems, built: Mapping[str, ServiceSpec], active: Mapping[str, ServiceSpec],
    owner: Mapping[str, Problems],
) -> None:
    """An active service may not need one that profiles switch off."""
    for name, svc in active.items():
        here = owner.get(name, p)
        for dep in svc.depends_on:
            if dep.service in built and dep.service not in active and dep.required:
                here.add(("services", name, "depends_on", dep.service),
                      f"depends on {dep.service!r}, which is inactive (it has profiles)")
        mode = svc.network_mode or ""
        if mode.startswith("service:") and mode[8:] in built and mode[8:] not in active:
            here.add(("services", name, "network_mode"),
                  f"uses the network of {mode[8:]!r}, which is inactive (it has profiles)")
