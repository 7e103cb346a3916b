"""Top-level ``networks:`` and ``volumes:`` to NetworkSpec and VolumeSpec.

Docker names follow Compose: ``<stack>_<key>`` unless ``name:`` is given;
an external resource is used by its name as is and may carry no settings.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable
from typing import Any

from gitops_edge.core.compose.fields import (
    as_bool,
    as_dict_or_list,
    as_mapping,
    as_str,
    check_keys,
    scalar_text,
)
from gitops_edge.core.compose.paths import PathEscapeError, host_path
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.model.spec import Ipam, IpamPool, NetworkSpec, Pairs, VolumeSpec

_NET_KEYS = ("driver", "driver_opts", "external", "name", "internal", "labels", "ipam", "attachable",
             "enable_ipv6")
_NET_UNSUPPORTED = {"enable_ipv4": "it needs Engine API 1.47"}
_IPAM_KEYS = ("driver", "config", "options")
_POOL_KEYS = ("subnet", "ip_range", "gateway", "aux_addresses")
_VOL_KEYS = ("driver", "driver_opts", "external", "name", "labels")


def build_networks(
    p: Problems, stack: str, value: object, include_default: bool
) -> tuple[NetworkSpec, ...]:
    """Declared networks, plus the implicit ``default`` when a service uses it."""
    declared = _declared(p, ("networks",), value)
    if include_default:
        declared.setdefault("default", {})
    out = []
    for key, cfg in sorted(declared.items()):
        path = ("networks", key)
        check_keys(p, path, cfg, _NET_KEYS, _NET_UNSUPPORTED)
        common = _common(p, path, stack, key, cfg)
        if common is None:
            continue
        name, external, driver, opts, labels = common
        internal = bool(as_bool(p, (*path, "internal"), cfg.get("internal", False)))
        ipam = _ipam(p, (*path, "ipam"), cfg["ipam"]) if cfg.get("ipam") is not None else None
        attachable = bool(as_bool(p, (*path, "attachable"), cfg.get("attachable", False)))
        ipv6 = as_bool(p, (*path, "enable_ipv6"), cfg["enable_ipv6"]) if cfg.get("enable_ipv6") is not None else None
        out.append(NetworkSpec(key, name, external, driver, opts, internal, labels, ipam, attachable, ipv6))
    return tuple(out)


def _ipam(p: Problems, path: KeyPath, value: object) -> Ipam | None:
    """Address management; ``options`` is accepted and, as by Compose, not passed on."""
    cfg = as_mapping(p, path, value)
    if cfg is None:
        return None
    check_keys(p, path, cfg, _IPAM_KEYS)
    driver = as_str(p, (*path, "driver"), cfg["driver"]) if cfg.get("driver") is not None else None
    pools = []
    raw_pools = cfg.get("config") or []
    if not isinstance(raw_pools, list):
        p.add((*path, "config"), "must be a list")
        raw_pools = []
    for i, raw in enumerate(raw_pools):
        where = (*path, "config", i)
        pool = as_mapping(p, where, raw)
        if pool is None:
            continue
        check_keys(p, where, pool, _POOL_KEYS)
        text = {k: as_str(p, (*where, k), pool[k]) for k in _POOL_KEYS[:3] if pool.get(k) is not None}
        aux = _pairs(p, (*where, "aux_addresses"), pool.get("aux_addresses"), as_mapping_only=True)
        pools.append(IpamPool(text.get("subnet"), text.get("ip_range"), text.get("gateway"), aux))
    return Ipam(driver, tuple(pools))


def build_volumes(p: Problems, stack: str, value: object, stack_dir: str = ".",
                  root: str = "/") -> tuple[VolumeSpec, ...]:
    out = []
    for key, cfg in sorted(_declared(p, ("volumes",), value).items()):
        path = ("volumes", key)
        check_keys(p, path, cfg, _VOL_KEYS)
        common = _common(p, path, stack, key, cfg)
        if common is not None:
            vol = VolumeSpec(key, *common)
            out.append(_bind_device(p, path, vol, stack_dir, root))
    return tuple(out)


def _bind_device(p: Problems, path: KeyPath, vol: VolumeSpec, stack_dir: str, root: str) -> VolumeSpec:
    """A local ``o: bind`` volume's relative ``device`` resolves against the stack, as in Compose.

    Compose does this only for ``driver: local`` written out and ``o`` exactly
    ``bind``; the resolved path may not leave the repository.
    """
    opts = dict(vol.driver_opts)
    device = opts.get("device")
    if vol.driver != "local" or opts.get("o") != "bind" or device is None or posixpath.isabs(device):
        return vol
    try:
        opts["device"] = host_path(root, stack_dir, device or ".")
    except PathEscapeError as exc:
        p.add((*path, "driver_opts", "device"), f"device: {exc}")
        return vol
    return dataclasses.replace(vol, driver_opts=tuple(sorted(opts.items())))


def declared_keys(value: object) -> set[str]:
    """Keys of a top-level section, for reference checks (tolerant of bad shapes)."""
    return set(value) if isinstance(value, dict) else set()


def _declared(p: Problems, path: KeyPath, value: object) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    section = as_mapping(p, path, value)
    out: dict[str, dict[str, Any]] = {}
    for key, cfg in (section or {}).items():
        if key.startswith("x-"):
            continue
        body = as_mapping(p, (*path, key), cfg) if cfg is not None else {}
        if body is not None:
            out[key] = body
    return out


def _common(
    p: Problems, path: KeyPath, stack: str, key: str, cfg: dict[str, Any]
) -> tuple[str, bool, str | None, Pairs, Pairs] | None:
    before = len(p.errors)
    external = _external(p, (*path, "external"), cfg.get("external", False))
    name = cfg.get("name")
    if name is not None:
        name = as_str(p, (*path, "name"), name)
    if external:
        for extra in ("driver", "driver_opts", "labels", "internal"):
            if extra in cfg:
                p.add((*path, extra), f"an external resource cannot set {extra!r}")
    driver = cfg.get("driver")
    if driver is not None:
        driver = as_str(p, (*path, "driver"), driver)
    opts = _pairs(p, (*path, "driver_opts"), cfg.get("driver_opts"), as_mapping_only=True)
    labels = _pairs(p, (*path, "labels"), cfg.get("labels"))
    if len(p.errors) != before:
        return None
    docker_name = name or (key if external else f"{stack}_{key}")
    return docker_name, external, driver, opts, labels


def _external(p: Problems, path: KeyPath, value: object) -> bool:
    if isinstance(value, dict):
        p.add(path, "use 'external: true' with a top-level 'name:' (the legacy form is obsolete)")
        return True
    return bool(as_bool(p, path, value))


def _pairs(p: Problems, path: KeyPath, value: object, as_mapping_only: bool = False) -> Pairs:
    if value is None:
        return ()
    reader: Callable[[Problems, KeyPath, object], dict[str, Any] | None]
    reader = as_mapping if as_mapping_only else as_dict_or_list
    pairs = reader(p, path, value) or {}
    return tuple(sorted((k, "" if v is None else scalar_text(v)) for k, v in pairs.items()))
