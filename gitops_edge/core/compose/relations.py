"""How a service relates to networks and to other services of the project.

``networks``/``network_mode``, ``depends_on``, ``links``, and the namespaces
and volumes one service may share with another (``ipc``, ``pid``,
``volumes_from``), plus the dependencies Compose implies from them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from gitops_edge.core.compose.fields import (
    as_bool,
    as_dict_or_list,
    as_int,
    as_mapping,
    as_str,
    as_str_list,
    check_keys,
    type_name,
)
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.model.spec import Dependency, NetworkAttachment

_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_NETWORK_MODE = re.compile(r"^(host|none|bridge|default|service:.+|container:.+)$")
_IPC_MODE = re.compile(r"^(none|private|shareable|host|service:.+|container:.+)$")
_PID_MODE = re.compile(r"^(host|service:.+|container:.+)$")
_VOLUMES_FROM = re.compile(r"^(container:)?[^:]+(:(ro|rw))?$")


def shared_namespaces(
    p: Problems, path: KeyPath, svc: Mapping[str, Any], services: Collection[str]
) -> dict[str, Any]:
    """``ipc``, ``pid``, ``links``, ``external_links``, ``volumes_from``: the services they name must exist."""
    out: dict[str, Any] = {}
    for key, pattern in (("ipc", _IPC_MODE), ("pid", _PID_MODE)):
        if svc.get(key) is None:
            continue
        mode = as_str(p, (*path, key), svc[key])
        if mode is None:
            continue
        if not pattern.match(mode):
            p.add((*path, key), f"invalid {key} mode {mode!r}")
        elif mode.startswith("service:") and mode[8:] not in services:
            p.add((*path, key), f"{key} refers to undefined service {mode[8:]!r}")
        out[key] = mode
    if svc.get("links") is not None:
        links = as_str_list(p, (*path, "links"), svc["links"]) or ()
        for i, link in enumerate(links):
            target = link.split(":")[0]
            if target not in services or link.count(":") > 1:
                p.add((*path, "links", i), f"links refers to undefined service {target!r}")
        out["links"] = links
    if svc.get("external_links") is not None:
        out["external_links"] = as_str_list(p, (*path, "external_links"), svc["external_links"]) or ()
        for i, link in enumerate(out["external_links"]):
            if not link or link.count(":") > 1:
                p.add((*path, "external_links", i), f"invalid external link {link!r}")
    if svc.get("volumes_from") is not None:
        items = as_str_list(p, (*path, "volumes_from"), svc["volumes_from"]) or ()
        for i, item in enumerate(items):
            if not _VOLUMES_FROM.match(item):
                p.add((*path, "volumes_from", i), f"invalid volumes_from {item!r}")
            elif not item.startswith("container:") and item.split(":")[0] not in services:
                p.add((*path, "volumes_from", i),
                      f"volumes_from refers to undefined service {item.split(':')[0]!r}")
        out["volumes_from"] = items
    return out


def implied_dependencies(kw: Mapping[str, Any]) -> tuple[Dependency, ...]:
    """Compose adds a dependency on a service whose namespaces or volumes this one shares.

    ``network_mode``/``ipc``/``pid: service:x`` add ``x`` (restarting with it);
    ``volumes_from: x`` adds ``x``; ``links: [x]`` adds ``x`` (restarting with it).
    A declared dependency is left as written.
    """
    deps = {d.service: d for d in kw.get("depends_on", ())}
    for key in ("network_mode", "ipc", "pid"):
        mode = kw.get(key) or ""
        if mode.startswith("service:"):
            deps.setdefault(mode[8:], Dependency(mode[8:], restart=True))
    for item in kw.get("volumes_from", ()):
        if not item.startswith("container:"):
            deps.setdefault(item.split(":")[0], Dependency(item.split(":")[0]))
    for link in kw.get("links", ()):
        deps.setdefault(link.split(":")[0], Dependency(link.split(":")[0], restart=True))
    return tuple(deps[k] for k in sorted(deps))


def networking(
    p: Problems, path: KeyPath, svc: Mapping[str, Any], services: Collection[str], networks: Collection[str]
) -> dict[str, Any]:
    """``network_mode`` or ``networks`` (by default the ``default`` network)."""
    mode = svc.get("network_mode")
    if mode is not None:
        mode = as_str(p, (*path, "network_mode"), mode)
        if mode is not None and not _NETWORK_MODE.match(mode):
            p.add((*path, "network_mode"), f"invalid network_mode {mode!r}")
        if mode is not None and mode.startswith("service:") and mode[8:] not in services:
            p.add((*path, "network_mode"), f"network_mode refers to undefined service {mode[8:]!r}")
        if "networks" in svc:
            p.add((*path, "networks"), "'networks' cannot be combined with 'network_mode'")
        return {"network_mode": mode, "networks": ()}
    if "networks" not in svc:
        return {"networks": (NetworkAttachment("default"),)}
    return {"networks": _networks(p, (*path, "networks"), svc["networks"], networks)}


def _networks(
    p: Problems, path: KeyPath, value: object, networks: Collection[str]
) -> tuple[NetworkAttachment, ...]:
    out: dict[str, NetworkAttachment] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            key = as_str(p, (*path, i), item)
            if key is not None:
                out[key] = NetworkAttachment(key)
                _check_network_ref(p, (*path, i), key, networks)
    elif isinstance(value, dict):
        for key, opts in value.items():
            where = (*path, key)
            _check_network_ref(p, where, key, networks)
            if opts is None:
                out[key] = NetworkAttachment(key)
                continue
            opts = as_mapping(p, where, opts)
            if opts is None:
                continue
            check_keys(p, where, opts,
                       ("aliases", "ipv4_address", "ipv6_address", "priority", "gw_priority", "link_local_ips",
                        "driver_opts"),
                       ("mac_address", "interface_name"))  # these two need Engine API 1.44+
            aliases = as_str_list(p, (*where, "aliases"), opts.get("aliases", [])) or ()
            ipv4 = opts.get("ipv4_address")
            if ipv4 is not None:
                ipv4 = as_str(p, (*where, "ipv4_address"), ipv4)
            priority = as_int(p, (*where, "priority"), opts["priority"]) if opts.get("priority") is not None else 0
            if opts.get("gw_priority") is not None:  # needs Engine API 1.48: Docker 20.10 ignores it, so does this
                as_int(p, (*where, "gw_priority"), opts["gw_priority"])
            local = as_str_list(p, (*where, "link_local_ips"), opts.get("link_local_ips") or []) or ()
            driver_opts = as_dict_or_list(p, (*where, "driver_opts"), opts.get("driver_opts") or {}) or {}
            ipv6 = as_str(p, (*where, "ipv6_address"), opts["ipv6_address"]) if opts.get("ipv6_address") else None
            out[key] = NetworkAttachment(key, tuple(aliases), ipv4, ipv6, priority or 0, tuple(local),
                                         tuple(sorted((k, v or "") for k, v in driver_opts.items())))
    else:
        p.add(path, f"must be a list or a mapping, not a {type_name(value)}")
    return tuple(out[k] for k in sorted(out))


def _check_network_ref(p: Problems, path: KeyPath, key: str, networks: Collection[str]) -> None:
    if key not in networks:
        p.add(path, f"service refers to undefined network {key!r}")


def depends_on(
    p: Problems, path: KeyPath, value: object, name: str, services: Collection[str]
) -> tuple[Dependency, ...]:
    deps: dict[str, Dependency] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            dep = as_str(p, (*path, i), item)
            if dep is not None:
                deps[dep] = Dependency(dep)
                _check_service_ref(p, (*path, i), dep, name, services)
    elif isinstance(value, dict):
        for dep, opts in value.items():
            where = (*path, dep)
            _check_service_ref(p, where, dep, name, services)
            opts = as_mapping(p, where, opts if opts is not None else {})
            if opts is None:
                continue
            check_keys(p, where, opts, ("condition", "restart", "required"))
            cond = opts.get("condition", "service_started")
            if cond not in _CONDITIONS:
                p.add((*where, "condition"), f"condition must be one of {', '.join(_CONDITIONS)}")
            restart = as_bool(p, (*where, "restart"), opts.get("restart", False))
            required = as_bool(p, (*where, "required"), opts.get("required", True))
            deps[dep] = Dependency(dep, str(cond), bool(restart), required is not False)
    else:
        p.add(path, f"must be a list or a mapping, not a {type_name(value)}")
    return tuple(deps[k] for k in sorted(deps))


def _check_service_ref(
    p: Problems, path: KeyPath, dep: str, name: str, services: Collection[str]
) -> None:
    if dep == name:
        p.add(path, f"service {name!r} depends on itself")
    elif dep not in services:
        p.add(path, f"depends on undefined service {dep!r}")
