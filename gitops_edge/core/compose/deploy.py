"""``deploy:`` as ``docker compose up`` reads it for plain (non-swarm) containers.

Compose uses ``resources.limits`` (memory, cpus, pids), the memory
reservation and ``restart_policy``; the swarm-only sections (placement,
update/rollback config, endpoint mode, deploy labels) are accepted and, as in
Compose, have no effect on a container. Values that also have a service-level
key (``mem_limit``, ``cpus``, ``pids_limit``) must agree with it, as
compose-go requires. ``replicas`` is read as Compose reads it (the engine
runs that many containers, 0 included); ``mode: global`` is
refused, and so is a
``max_attempts`` without ``condition: on-failure`` (Docker refuses that
container at create time, after Compose accepted the file).
"""

from __future__ import annotations

from typing import Any

from gitops_edge.core.compose.fields import as_float, as_int, as_mapping, as_size, as_str, check_keys
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.core.compose.tuning import reservation_devices

DEPLOY_KEYS = ("resources", "restart_policy", "replicas", "mode", "labels", "placement",
               "update_config", "rollback_config", "endpoint_mode")
_RESOURCE_KEYS = ("cpus", "memory", "pids", "devices", "generic_resources")
_POLICY_KEYS = ("condition", "delay", "max_attempts", "window")
_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


def apply_deploy(p: Problems, path: KeyPath, value: object, kw: dict[str, Any]) -> None:
    """Fold ``deploy`` into the keyword arguments of ServiceSpec (``kw``)."""
    deploy = as_mapping(p, path, value)
    if deploy is None:
        return
    check_keys(p, path, deploy, DEPLOY_KEYS)
    if deploy.get("replicas") is not None:
        replicas = as_int(p, (*path, "replicas"), deploy["replicas"], minimum=0)
        if replicas is not None:
            kw["replicas"] = replicas
    if deploy.get("mode") not in (None, "replicated"):
        p.add((*path, "mode"), "only 'replicated' (one container) is supported by gitops-edge")
    if deploy.get("resources") is not None:
        _resources(p, (*path, "resources"), deploy["resources"], kw)
    if deploy.get("restart_policy") is not None:
        policy = _restart_policy(p, (*path, "restart_policy"), deploy["restart_policy"])
        if policy is not None:
            kw["restart"] = policy  # Compose lets it win over `restart:`


def _resources(p: Problems, path: KeyPath, value: object, kw: dict[str, Any]) -> None:
    res = as_mapping(p, path, value)
    if res is None:
        return
    check_keys(p, path, res, ("limits", "reservations"))
    if res.get("limits") is not None and (limits := as_mapping(p, (*path, "limits"), res["limits"])):
        where = (*path, "limits")
        check_keys(p, where, limits, _RESOURCE_KEYS[:3])
        memory = as_size(p, (*where, "memory"), limits["memory"]) if "memory" in limits else None
        cpus = as_float(p, (*where, "cpus"), limits["cpus"]) if "cpus" in limits else None
        pids = as_int(p, (*where, "pids"), limits["pids"]) if "pids" in limits else None
        for key, service_key, limit in (("mem_limit", "mem_limit", memory), ("cpus", "cpus", cpus),
                                        ("pids_limit", "pids_limit", pids)):
            own = kw.get(key)
            if own and own != (limit or 0):
                limit_key = {"mem_limit": "memory", "pids_limit": "pids"}.get(key, key)
                p.add((*where, limit_key) if limit else (*path[:-2], service_key),
                      f"can't set distinct values on '{service_key}' and "
                      f"'deploy.resources.limits.{limit_key}'")
            elif limit:
                kw[key] = limit
    if res.get("reservations") is not None:
        where = (*path, "reservations")
        reservations = as_mapping(p, where, res["reservations"]) or {}
        check_keys(p, where, reservations, ("cpus", "memory", "pids", "devices"), ("generic_resources",))
        if "cpus" in reservations:
            as_float(p, (*where, "cpus"), reservations["cpus"])  # swarm scheduling only
        if "memory" in reservations:
            memory = as_size(p, (*where, "memory"), reservations["memory"])
            if memory:
                kw["mem_reservation"] = memory
        if reservations.get("devices") is not None:
            devices = reservation_devices(p, (*where, "devices"), reservations["devices"])
            kw["device_requests"] = (*devices, *kw.get("device_requests", ()))  # before gpus, as Compose


def _restart_policy(p: Problems, path: KeyPath, value: object) -> str | None:
    policy = as_mapping(p, path, value)
    if policy is None:
        return None
    check_keys(p, path, policy, _POLICY_KEYS)
    name = as_str(p, (*path, "condition"), policy.get("condition", "none"))  # none: Docker's ""
    if name is None:
        return None
    if name not in _CONDITIONS:
        p.add((*path, "condition"), f"condition must be one of {', '.join(_CONDITIONS)}")
        return None
    restart = _CONDITIONS[name]
    attempts = 0
    if policy.get("max_attempts") is not None:
        attempts = as_int(p, (*path, "max_attempts"), policy["max_attempts"], minimum=0) or 0
        if attempts and restart != "on-failure":
            # Compose passes it on and Docker refuses the container at create.
            p.add((*path, "max_attempts"), "max_attempts needs condition: on-failure")
            return None
    return f"{restart}:{attempts}" if attempts else restart
