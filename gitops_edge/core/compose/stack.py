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
from collections.abc import Mapping
from typing import Any

from gitops_edge.core.compose.fields import as_mapping, check_keys
from gitops_edge.core.compose.graph import find_cycle
from gitops_edge.core.compose.interpolate import InterpolationError, interpolate
from gitops_edge.core.compose.mounts import MountContext
from gitops_edge.core.compose.problems import KeyPath, LineMap, Problems
from gitops_edge.core.compose.resources import build_networks, build_volumes, declared_keys
from gitops_edge.core.compose.service import ReadText, ServiceContext, build_service
from gitops_edge.model.spec import ServiceSpec, StackSpec

TOP_LEVEL_KEYS = ("version", "name", "services", "networks", "volumes")
UNSUPPORTED_TOP_LEVEL_KEYS = ("secrets", "configs", "include", "models")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def is_project_name(name: str) -> bool:
    """Compose's rule: lowercase letters, digits, ``_`` and ``-``, not leading."""
    return bool(_PROJECT_NAME.match(name))


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
) -> StackSpec:
    """Normalize one parsed compose file; raises ``StackErrors`` listing every problem.

    ``stack_dir`` and ``compose_file`` are repo-relative; ``root`` is the
    absolute checkout root that bind sources resolve into; ``env`` holds the
    interpolation variables; ``read_text`` reads repo-relative files (env_file).
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
    if raw_services is None:
        p.add((), "'services' is required")
    services_map = as_mapping(p, ("services",), raw_services or {}) or {}
    services_map = {k: v for k, v in services_map.items() if not k.startswith("x-")}
    ctx = ServiceContext(
        mounts=MountContext(root, stack_dir, declared_keys(data.get("volumes"))),
        env=env,
        read_text=read_text,
        networks=declared_keys(data.get("networks")) | {"default"},
        services=set(services_map),
    )
    built: dict[str, ServiceSpec] = {}
    for svc_name, raw in services_map.items():
        if not _SERVICE_NAME.match(svc_name):
            p.add(("services", svc_name), f"invalid service name {svc_name!r}")
        spec = build_service(p, svc_name, raw, ctx)
        if spec is not None:
            built[svc_name] = spec
    _check_cycles(p, built)
    enabled = enabled_profiles(env)
    active = {n: s for n, s in built.items() if is_active(s, enabled)}
    _check_inactive_refs(p, built, active)
    used_nets = {a.network for s in active.values() for a in s.networks}
    used_vols = {m.source for s in active.values() for m in s.mounts if m.type == "volume"}
    networks = build_networks(p, name, data.get("networks"), "default" in used_nets)
    volumes = build_volumes(p, name, data.get("volumes"), stack_dir, root)
    p.raise_if_any()
    return StackSpec(
        name=name,
        path=stack_dir,
        compose_file=compose_file,
        services=tuple(active[k] for k in sorted(active)),
        networks=tuple(n for n in networks if n.key in used_nets),
        volumes=tuple(v for v in volumes if v.key in used_vols),
    )


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


def _check_cycles(p: Problems, services: Mapping[str, ServiceSpec]) -> None:
    edges = {n: [d.service for d in s.depends_on] for n, s in services.items()}
    cycle = find_cycle(edges)
    if cycle is not None:
        p.add(("services", cycle[0], "depends_on"),
              f"dependency cycle: {' -> '.join(cycle)}")


def _check_inactive_refs(
    p: Problems, built: Mapping[str, ServiceSpec], active: Mapping[str, ServiceSpec]
) -> None:
    """An active service may not need one that profiles switch off."""
    for name, svc in active.items():
        for dep in svc.depends_on:
            if dep.service in built and dep.service not in active and dep.required:
                p.add(("services", name, "depends_on", dep.service),
                      f"depends on {dep.service!r}, which is inactive (it has profiles)")
        mode = svc.network_mode or ""
        if mode.startswith("service:") and mode[8:] in built and mode[8:] not in active:
            p.add(("services", name, "network_mode"),
                  f"uses the network of {mode[8:]!r}, which is inactive (it has profiles)")
