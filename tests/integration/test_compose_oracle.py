"""Our Compose loader against the real ``docker compose config`` (the oracle).

Every case under tests/data/compose/<case>/ is loaded both ways and compared
field by field after normalizing each side to one plain shape. The negative
cases check that bad input gives a one-line DesiredStateError naming file,
line and key, and, where Compose also has an opinion, that it refuses too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.adapters.files.desired_state import load_desired_state
from gitops_edge.adapters.files.stack_files import agent_home, load_stack
from gitops_edge.core.compose.units import parse_duration, parse_size
from gitops_edge.model.spec import Ipam, ServiceSpec, StackSpec

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = DATA / "compose"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "compose.yaml").exists())


def compose_env() -> dict[str, str]:
    """What Compose sees of the host: PATH, and the home directory the agent gives ``~``."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": agent_home() or "/"}


def run_compose(compose_bin: str, case_dir: Path) -> subprocess.CompletedProcess[str]:
    """``docker compose config`` with no other host environment leaking in."""
    return subprocess.run(
        [compose_bin, "-p", case_dir.name, "config", "--format", "json"],
        cwd=case_dir,
        env=compose_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def oracle(compose_bin: str, case_dir: Path) -> dict[str, Any]:
    out = run_compose(compose_bin, case_dir)
    assert out.returncode == 0, out.stderr
    return unescape(json.loads(out.stdout))


def unescape(value: Any) -> Any:
    """``config`` re-escapes ``$`` as ``$$`` in its output; undo that."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape(v) for v in value]
    return value


# ---- one plain shape for both sides -------------------------------------------------


def _dur(value: str | None) -> int | None:
    return None if value is None else parse_duration(value)


COMPARED_SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "ports", "volumes", "tmpfs", "networks",
    "network_mode", "depends_on", "healthcheck", "restart", "labels", "user", "working_dir",
    "hostname", "container_name", "read_only", "privileged", "init", "tty", "stdin_open", "cap_add",
    "cap_drop", "security_opt", "devices", "logging", "mem_limit", "cpus", "stop_grace_period",
    "stop_signal", "extra_hosts", "ulimits", "sysctls", "pull_policy", "expose", "shm_size",
    "platform", "runtime", "volumes_from", "ipc", "pid", "deploy", "pids_limit", "mem_reservation",
    "profiles", "uts", "userns_mode", "cgroup", "cgroup_parent", "device_cgroup_rules", "dns",
    "dns_search", "dns_opt", "domainname", "mac_address", "group_add", "oom_score_adj",
    "oom_kill_disable", "memswap_limit", "mem_swappiness", "cpu_shares", "cpu_quota", "cpu_period",
    "cpu_rt_runtime", "cpu_rt_period", "cpuset", "cpu_count", "cpu_percent", "blkio_config",
    "annotations", "attach", "gpus", "storage_opt", "configs", "secrets", "links", "scale",
    "external_links", "post_start", "pre_stop", "isolation",
    "develop",  # `docker compose watch` only: nothing of it reaches a container
})
_PLAIN = ("uts", "isolation", "userns_mode", "cgroup", "cgroup_parent", "domainname", "mac_address", "oom_score_adj",
          "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_runtime", "cpu_rt_period", "cpuset",
          "cpu_count", "cpu_percent")
_LISTS = ("device_cgroup_rules", "dns", "dns_search", "dns_opt", "group_add")


def _abs(target: str, base: str) -> str:
    return target if target.startswith("/") else base + target


def _compose_tuning(svc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: svc.get(k) for k in _PLAIN}
    out.update({k: list(svc.get(k) or []) for k in _LISTS})
    out["oom_kill_disable"] = bool(svc.get("oom_kill_disable"))
    out["memswap_limit"] = None if svc.get("memswap_limit") is None else int(svc["memswap_limit"])
    out["mem_swappiness"] = None if svc.get("mem_swappiness") is None else int(svc["mem_swappiness"])
    blkio = svc.get("blkio_config")
    out["blkio"] = None if blkio is None else (
        blkio.get("weight"),
        *[[(e["Path"], int(e.get("Weight", e.get("Rate", 0)))) for e in blkio.get(k) or []]
          for k in ("weight_device", "device_read_bps", "device_write_bps", "device_read_iops",
                    "device_write_iops")])
    out["annotations"] = dict(svc.get("annotations") or {})
    out["storage_opt"] = dict(svc.get("storage_opt") or {})
    reservations = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {})
    out["device_requests"] = [
        (d.get("driver"), d.get("count", 0), list(d.get("device_ids") or []),
         [*(d.get("capabilities") or []), *(["gpu"] if gpu else [])], dict(d.get("options") or {}))
        for devices, gpu in ((reservations.get("devices") or [], False), (svc.get("gpus") or [], True))
        for d in devices
    ]
    return out


def _spec_tuning(svc: ServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(svc, k) for k in _PLAIN}
    out.update({k: list(getattr(svc, k)) for k in _LISTS})
    for key in ("oom_kill_disable", "memswap_limit", "mem_swappiness"):
        out[key] = getattr(svc, key)
    b = svc.blkio
    out["blkio"] = None if b is None else (
        b.weight, *[list(x) for x in (b.weight_device, b.device_read_bps, b.device_write_bps,
                                      b.device_read_iops, b.device_write_iops)])
    out["annotations"] = dict(svc.annotations)
    out["storage_opt"] = dict(svc.storage_opt)
    out["device_requests"] = [(r.driver, r.count, list(r.device_ids), list(r.capabilities), dict(r.options))
                              for r in svc.device_requests]
    return out
"""Service keys of ``docker compose config`` output that the two functions below compare."""


def from_compose_service(svc: dict[str, Any]) -> dict[str, Any]:
    hc = svc.get("healthcheck")
    health: Any = None
    if hc is not None:
        if hc.get("disable") or hc.get("test") == ["NONE"]:
            health = "disabled"
        else:
            health = (tuple(hc.get("test") or ()), _dur(hc.get("interval")),
                      _dur(hc.get("timeout")), hc.get("retries"), _dur(hc.get("start_period")))
    mounts = []
    for v in svc.get("volumes", []):
        size = (v.get("tmpfs") or {}).get("size")
        mounts.append((v["type"], v["target"], v.get("source"), bool(v.get("read_only")),
                       None if size is None else int(size),
                       bool((v.get("bind") or {}).get("create_host_path")),
                       (v.get("bind") or {}).get("selinux"), (v.get("bind") or {}).get("propagation"),
                       bool((v.get("volume") or {}).get("nocopy"))))
    for t in svc.get("tmpfs", []):
        target, _, opts = t.partition(":")
        size = parse_size(opts.partition("size=")[2]) if "size=" in opts else None
        mounts.append(("tmpfs", target, None, False, size, False, None, None, False))
    ulimits = {}
    for name, lim in (svc.get("ulimits") or {}).items():
        ulimits[name] = (lim, lim) if isinstance(lim, int) else (lim["soft"], lim["hard"])
    logging = svc.get("logging")
    deploy = svc.get("deploy") or {}
    limits = (deploy.get("resources") or {}).get("limits") or {}
    reservations = (deploy.get("resources") or {}).get("reservations") or {}
    restart = svc.get("restart", "no")
    if deploy.get("restart_policy") is not None:  # Compose lets it win over `restart:`
        policy = deploy["restart_policy"]
        restart = {"any": "always", "on-failure": "on-failure"}.get(policy.get("condition"), "no")
        if policy.get("max_attempts"):
            restart += f":{policy['max_attempts']}"
    memory = limits.get("memory") or svc.get("mem_limit")
    reserved = reservations.get("memory") or svc.get("mem_reservation")
    return {
        "image": svc["image"],
        "command": None if svc.get("command") is None else tuple(svc["command"]),
        "entrypoint": None if svc.get("entrypoint") is None else tuple(svc["entrypoint"]),
        "environment": dict(svc.get("environment") or {}),
        "ports": [(p["target"], p.get("published"), p.get("host_ip"), p.get("protocol", "tcp"))
                  for p in svc.get("ports", [])],
        "mounts": mounts,
        "networks": {k: (tuple((v or {}).get("aliases", ())), (v or {}).get("ipv4_address"),
                         (v or {}).get("ipv6_address"),
                         (v or {}).get("priority", 0), tuple((v or {}).get("link_local_ips", ())),
                         {o: str(x) for o, x in ((v or {}).get("driver_opts") or {}).items()})
                     for k, v in (svc.get("networks") or {}).items()},
        "network_mode": svc.get("network_mode"),
        "depends_on": {k: (v["condition"], bool(v.get("restart")), v.get("required", True))
                       for k, v in (svc.get("depends_on") or {}).items()},
        "healthcheck": health,
        "restart": restart,
        "labels": dict(svc.get("labels") or {}),
        "user": svc.get("user"),
        "working_dir": svc.get("working_dir"),
        "hostname": svc.get("hostname"),
        "container_name": svc.get("container_name"),
        "read_only": bool(svc.get("read_only")),
        "privileged": bool(svc.get("privileged")),
        "init": svc.get("init"),
        "tty": bool(svc.get("tty")),
        "stdin_open": bool(svc.get("stdin_open")),
        "cap_add": list(svc.get("cap_add", [])),
        "cap_drop": list(svc.get("cap_drop", [])),
        "security_opt": list(svc.get("security_opt", [])),
        "devices": [f"{d['source']}:{d['target']}:{d['permissions']}"
                    for d in svc.get("devices", [])],
        "logging": None if logging is None else (logging.get("driver"),
                                                 dict(logging.get("options") or {})),
        "mem_limit": None if memory is None else int(memory),
        "cpus": limits.get("cpus") or svc.get("cpus"),
        "pids_limit": limits.get("pids") or svc.get("pids_limit"),
        "mem_reservation": None if reserved is None else int(reserved),
        "expose": list(svc.get("expose", [])),
        "shm_size": None if svc.get("shm_size") is None else int(svc["shm_size"]),
        "platform": svc.get("platform"),
        "runtime": svc.get("runtime"),
        "volumes_from": list(svc.get("volumes_from", [])),
        "ipc": svc.get("ipc"),
        "pid": svc.get("pid"),
        "profiles": list(svc.get("profiles", [])),
        "links": list(svc.get("links", [])),
        "external_links": list(svc.get("external_links", [])),
        "configs": sorted(_abs(c.get("target") or c["source"], "/") for c in svc.get("configs", [])),
        "secrets": sorted(_abs(c.get("target") or c["source"], "/run/secrets/") for c in svc.get("secrets", [])),
        **_compose_tuning(svc),
        "stop_grace_period": _dur(svc.get("stop_grace_period")),
        "stop_signal": svc.get("stop_signal"),
        "extra_hosts": [h.replace("=", ":", 1) for h in svc.get("extra_hosts", [])],
        "ulimits": ulimits,
        "sysctls": dict(svc.get("sysctls") or {}),
        "pull_policy": {"if_not_present": "missing", None: "missing"}.get(
            svc.get("pull_policy"), svc.get("pull_policy")),
        "replicas": next((int(n) for n in (deploy.get("replicas"), svc.get("scale")) if n is not None), 1),
        **{key: [(tuple(h["command"]), h.get("user"), bool(h.get("privileged")), h.get("working_dir"),
                  dict(h.get("environment") or {})) for h in svc.get(key, [])]
           for key in ("post_start", "pre_stop")},
    }


def from_spec_service(svc: ServiceSpec) -> dict[str, Any]:
    hc = svc.healthcheck
    health: Any = None
    if hc is not None:
        health = "disabled" if hc.disable else (
            hc.test, hc.interval_ns, hc.timeout_ns, hc.retries, hc.start_period_ns)
    return {
        "image": svc.image,
        "command": svc.command,
        "entrypoint": svc.entrypoint,
        "environment": dict(svc.environment),
        "ports": [(p.target, p.published, p.host_ip, p.protocol) for p in svc.ports],
        "mounts": [(m.type, m.target, m.source, m.read_only, m.tmpfs_size,
                    m.type == "bind" and m.bind_create_host_path, m.bind_selinux, m.bind_propagation,
                    m.volume_nocopy)
                   for m in svc.mounts if m.origin is None],
        "networks": {n.network: (n.aliases, n.ipv4_address, n.ipv6_address, n.priority, n.link_local_ips,
                                 dict(n.driver_opts))
                     for n in svc.networks},
        "network_mode": svc.network_mode,
        "depends_on": {d.service: (d.condition, d.restart, d.required) for d in svc.depends_on},
        "healthcheck": health,
        "restart": svc.restart,
        "labels": dict(svc.labels),
        "user": svc.user,
        "working_dir": svc.working_dir,
        "hostname": svc.hostname,
        "container_name": svc.container_name,
        "read_only": svc.read_only,
        "privileged": svc.privileged,
        "init": svc.init,
        "tty": svc.tty,
        "stdin_open": svc.stdin_open,
        "cap_add": list(svc.cap_add),
        "cap_drop": list(svc.cap_drop),
        "security_opt": list(svc.security_opt),
        "devices": list(svc.devices),
        "logging": None if svc.logging is None else (svc.logging.driver,
                                                     dict(svc.logging.options)),
        "mem_limit": svc.mem_limit,
        "cpus": svc.cpus,
        "pids_limit": svc.pids_limit,
        "mem_reservation": svc.mem_reservation,
        "expose": list(svc.expose),
        "shm_size": svc.shm_size,
        "platform": svc.platform,
        "runtime": svc.runtime,
        "volumes_from": list(svc.volumes_from),
        "ipc": svc.ipc,
        "pid": svc.pid,
        "profiles": list(svc.profiles),
        "links": list(svc.links),
        "external_links": list(svc.external_links),
        "configs": sorted([m.target for m in svc.mounts if m.origin == "config"] + [f.target for f in svc.files]),
        "secrets": sorted(m.target for m in svc.mounts if m.origin == "secret"),
        **_spec_tuning(svc),
        "stop_grace_period": svc.stop_grace_period_ns,
        "stop_signal": svc.stop_signal,
        "extra_hosts": list(svc.extra_hosts),
        "ulimits": {u.name: (u.soft, u.hard) for u in svc.ulimits},
        "sysctls": dict(svc.sysctls),
        "pull_policy": svc.pull_policy,
        "replicas": svc.replicas,
        **{key: [(h.command, h.user, h.privileged, h.working_dir, dict(h.environment)) for h in getattr(svc, key)]
           for key in ("post_start", "pre_stop")},
    }


def compose_resources(cfg: dict[str, Any], section: str) -> dict[str, Any]:
    out = {}
    for key, r in (cfg.get(section) or {}).items():
        ipam = r.get("ipam") or {}
        out[key] = (r["name"], bool(r.get("external")), r.get("driver"),
                    {k: str(v) for k, v in (r.get("driver_opts") or {}).items()},
                    bool(r.get("internal")), bool(r.get("attachable")), r.get("enable_ipv6"),
                    dict(r.get("labels") or {}),
                    (ipam.get("driver"), [(c.get("subnet"), c.get("ip_range"), c.get("gateway"),
                                           dict(c.get("aux_addresses") or {}))
                                          for c in ipam.get("config") or []]))
    return out


def _ipam(ipam: Ipam | None) -> tuple[str | None, list[Any]]:
    if ipam is None:
        return (None, [])
    return (ipam.driver, [(c.subnet, c.ip_range, c.gateway, dict(c.aux_addresses)) for c in ipam.config])


def spec_resources(stack: StackSpec, section: str) -> dict[str, Any]:
    if section == "networks":
        return {n.key: (n.name, n.external, n.driver, dict(n.driver_opts), n.internal, n.attachable,
                        n.enable_ipv6, dict(n.labels), _ipam(n.ipam)) for n in stack.networks}
    return {v.key: (v.name, v.external, v.driver, dict(v.driver_opts), False, False, None, dict(v.labels),
                    (None, [])) for v in stack.volumes}


# ---- the positive corpus ------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the corpus as a checkout: bind paths then resolve into it."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(CORPUS, root / "stacks")
    return root


def test_corpus_is_broad() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES)
def test_matches_compose_config(case: str, compose_bin: str, corpus_root: Path) -> None:
    case_dir = corpus_root / "stacks" / case
    expected = oracle(compose_bin, case_dir)
    ours = load_stack(corpus_root, case_dir)
    assert ours.name == case
    assert ours.compose_file == f"stacks/{case}/compose.yaml"
    assert sorted(s.name for s in ours.services) == sorted(expected["services"])
    for name, svc in expected["services"].items():
        want = from_compose_service(svc)
        got = from_spec_service(ours.service(name))
        for key in want:
            assert got[key] == want[key], f"{case}/{name}.{key}"
    assert spec_resources(ours, "networks") == compose_resources(expected, "networks")
    assert spec_resources(ours, "volumes") == compose_resources(expected, "volumes")


def test_whole_tree_loads(corpus_root: Path) -> None:
    state = load_desired_state(corpus_root, "stacks", revision="abc123")
    assert state.revision == "abc123"
    assert [s.name for s in state.stacks] == CASES


def test_bind_sources_resolve_into_the_checkout(corpus_root: Path) -> None:
    db = load_stack(corpus_root, Path("stacks/volumes")).service("db")
    binds = [m.source for m in db.mounts if m.type == "bind"]
    assert str(corpus_root / "stacks/volumes/data") in binds
    assert "/var/run/docker.sock" in binds
