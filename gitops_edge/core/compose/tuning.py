"""Kernel and resource settings of a service: namespaces, cgroups, DNS, CPU, block I/O, GPUs.

Each key maps one to one onto a Docker ``HostConfig`` field, as Compose
passes it; several reach the host (``uts``/``userns_mode``/``cgroup: host``,
``cgroup_parent``, ``device_cgroup_rules``, ``gpus``, ``storage_opt``,
OOM protection), so they load here and are judged by the device security
policy (core/security.py), never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_edge.core.compose.fields import (
    as_bool,
    as_dict_or_list,
    as_int,
    as_mapping,
    as_size,
    as_str,
    as_str_list,
    as_str_or_list,
    check_keys,
    scalar_text,
    type_name,
)
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.model.spec import Blkio, DeviceRequest, Pairs

TUNING_KEYS = frozenset({
    "uts", "userns_mode", "cgroup", "cgroup_parent", "device_cgroup_rules", "dns", "dns_search",
    "dns_opt", "domainname", "mac_address", "group_add", "oom_score_adj", "oom_kill_disable",
    "memswap_limit", "mem_swappiness", "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_runtime",
    "cpu_rt_period", "cpuset", "cpu_count", "cpu_percent", "blkio_config", "annotations", "attach",
    "gpus", "storage_opt", "isolation",
})  # fmt: skip
_MODES = {"uts": ("host",), "userns_mode": ("host",), "cgroup": ("host", "private"),
          "isolation": ("default",)}  # process, hyperv: Windows engines only (Docker refuses them here)
_INTS = ("cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_runtime", "cpu_rt_period", "cpu_count",
         "cpu_percent")
_THROTTLES = ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops")
_DEVICE_KEYS = ("driver", "count", "device_ids", "capabilities", "options")


def apply_tuning(p: Problems, path: KeyPath, svc: Mapping[str, Any], kw: dict[str, Any]) -> None:
    """Read every key of ``TUNING_KEYS`` present in ``svc`` into ServiceSpec arguments ``kw``."""

    def at(key: str) -> KeyPath:
        return (*path, key)

    present = {k: v for k, v in svc.items() if k in TUNING_KEYS and v is not None}
    for key, allowed in _MODES.items():
        if key in present and (mode := as_str(p, at(key), present[key])) is not None:
            if mode not in allowed:
                p.add(at(key), f"{key} must be {' or '.join(repr(a) for a in allowed)}, not {mode!r}")
            kw[key] = mode
    for key in ("cgroup_parent", "domainname", "mac_address", "cpuset"):
        if key in present:
            kw[key] = as_str(p, at(key), present[key]) if key != "cpuset" else _text(p, at(key), present[key])
    for key in ("dns", "dns_search"):
        if key in present:
            kw[key] = as_str_or_list(p, at(key), present[key]) or ()
    for key in ("dns_opt", "device_cgroup_rules", "group_add"):
        if key in present:
            kw[key] = as_str_list(p, at(key), present[key]) or ()
    if "oom_score_adj" in present:
        score = as_int(p, at("oom_score_adj"), present["oom_score_adj"], minimum=-1000)
        if score is not None and score > 1000:
            p.add(at("oom_score_adj"), f"must be at most 1000, not {score}")
        kw["oom_score_adj"] = score
    for key in ("oom_kill_disable", "attach"):
        if key in present:
            value = as_bool(p, at(key), present[key])
            if key == "oom_kill_disable":  # `attach` only steers `docker compose up` output
                kw[key] = bool(value)
    if "memswap_limit" in present:
        raw = present["memswap_limit"]
        kw["memswap_limit"] = -1 if raw in (-1, "-1") else as_size(p, at("memswap_limit"), raw)
    if "mem_swappiness" in present:
        swappiness = as_int(p, at("mem_swappiness"), present["mem_swappiness"], minimum=0)
        if swappiness is not None and swappiness > 100:
            p.add(at("mem_swappiness"), f"must be at most 100, not {swappiness}")
        kw["mem_swappiness"] = swappiness
    for key in _INTS:
        if key in present:
            kw[key] = as_int(p, at(key), present[key])
    if "blkio_config" in present:
        kw["blkio"] = _blkio(p, at("blkio_config"), present["blkio_config"])
    for key in ("annotations", "storage_opt"):
        if key in present:
            kw[key] = _pairs(p, at(key), present[key])
    if "gpus" in present:
        gpus = _device_requests(p, at("gpus"), present["gpus"], gpus=True)
        kw["device_requests"] = (*kw.get("device_requests", ()), *gpus)


def reservation_devices(p: Problems, path: KeyPath, value: object) -> tuple[DeviceRequest, ...]:
    """``deploy.resources.reservations.devices``: as written (Compose adds no capability)."""
    return _device_requests(p, path, value, gpus=False)


def _device_requests(p: Problems, path: KeyPath, value: object, gpus: bool) -> tuple[DeviceRequest, ...]:
    if gpus and value == "all":
        return (DeviceRequest(count=-1, capabilities=("gpu",)),)
    if not isinstance(value, list):
        p.add(path, f"must be a list{' or all' if gpus else ''}, not a {type_name(value)}")
        return ()
    out = []
    for i, raw in enumerate(value):
        where = (*path, i)
        item = as_mapping(p, where, raw)
        if item is None:
            continue
        check_keys(p, where, item, _DEVICE_KEYS)
        count = 0
        if item.get("count") is not None:
            count = -1 if item["count"] == "all" else (as_int(p, (*where, "count"), item["count"], minimum=0) or 0)
        caps = as_str_list(p, (*where, "capabilities"), item.get("capabilities") or []) or ()
        if not gpus and not caps:
            p.add((*where, "capabilities"), "a device reservation needs capabilities")
        driver = as_str(p, (*where, "driver"), item["driver"]) if item.get("driver") is not None else None
        out.append(DeviceRequest(
            driver=driver,
            count=count,
            device_ids=as_str_list(p, (*where, "device_ids"), item.get("device_ids") or []) or (),
            capabilities=(*caps, "gpu") if gpus else caps,  # Compose adds "gpu" to every gpus entry
            options=_pairs(p, (*where, "options"), item.get("options") or {}),
        ))
    return tuple(out)


def _blkio(p: Problems, path: KeyPath, value: object) -> Blkio | None:
    cfg = as_mapping(p, path, value)
    if cfg is None:
        return None
    check_keys(p, path, cfg, ("weight", "weight_device", *_THROTTLES))
    weight = as_int(p, (*path, "weight"), cfg["weight"]) if cfg.get("weight") is not None else None
    lists: dict[str, tuple[tuple[str, int], ...]] = {}
    for key, field in (("weight_device", "weight"), *((k, "rate") for k in _THROTTLES)):
        entries = []
        raw = cfg.get(key) or []
        if not isinstance(raw, list):
            p.add((*path, key), "must be a list")
            raw = []
        for i, item in enumerate(raw):
            where = (*path, key, i)
            entry = as_mapping(p, where, item)
            if entry is None:
                continue
            check_keys(p, where, entry, ("path", field))
            device = as_str(p, (*where, "path"), entry.get("path"))
            if key.endswith("_bps"):
                amount = as_size(p, (*where, field), entry.get(field))
            else:
                amount = as_int(p, (*where, field), entry.get(field), minimum=0)
            if device is not None and amount is not None:
                entries.append((device, amount))
        lists[key] = tuple(entries)
    return Blkio(weight, **lists)


def _pairs(p: Problems, path: KeyPath, value: object) -> Pairs:
    pairs = as_dict_or_list(p, path, value) or {}
    return tuple(sorted((k, v or "") for k, v in pairs.items()))


def _text(p: Problems, path: KeyPath, value: object) -> str | None:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return scalar_text(value)
    p.add(path, f"must be a string, not a {type_name(value)}")
    return None
