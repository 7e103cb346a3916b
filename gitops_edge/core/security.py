"""The device security policy (README.md, "Trust"): what a compose file from Git may ask for.

Whoever can push to the repository must not thereby own the device: host
namespaces, privileged mode, extra capabilities, devices, host paths and
unconfined profiles are refused unless the device-local policy allows them.
Pure: paths are compared as normalized strings (``..`` resolved with
``posixpath.normpath``), nothing on disk is looked at.
"""

from __future__ import annotations

import posixpath
from fnmatch import fnmatchcase

from gitops_edge.model.spec import ServiceSpec, StackSpec, VolumeSpec
from gitops_edge.model.trust import SecurityPolicy

_DENIED = "is not allowed by the device security policy"

# Docker's default capability set: adding one of these again grants nothing.
DOCKER_DEFAULT_CAPS = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})  # fmt: skip

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")

# security_opt values that switch a confinement off (either separator, as Docker accepts).
_UNCONFINED = frozenset({
    "seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined",
})  # fmt: skip


def check_stack(stack: StackSpec, policy: SecurityPolicy, checkout_root: str) -> list[str]:
    """One line per violation, each naming ``stack/service`` (or the volume) and what.

    ``checkout_root`` is the absolute work tree the stack was loaded from:
    bind mounts of repository files are always fine.
    """
    out: list[str] = []
    for svc in stack.services:
        out += [f"{stack.name}/{svc.name}: {problem}" for problem in _service(svc, policy, checkout_root)]
    for vol in stack.volumes:
        out += [f"{stack.name}: volume {vol.key}: {problem}" for problem in _volume(vol, policy, checkout_root)]
    return out


def _service(svc: ServiceSpec, policy: SecurityPolicy, root: str) -> list[str]:
    out: list[str] = []
    if svc.privileged and not policy.allow_privileged:
        out.append(f"privileged {_DENIED} (security.allow_privileged)")
    if svc.network_mode == "host" and not policy.allow_host_network:
        out.append(f"network_mode: host {_DENIED} (security.allow_host_network)")
    if svc.pid == "host" and not policy.allow_host_pid:
        out.append(f"pid: host {_DENIED} (security.allow_host_pid)")
    if svc.ipc == "host" and not policy.allow_host_ipc:
        out.append(f"ipc: host {_DENIED} (security.allow_host_ipc)")
    if svc.runtime not in (None, "runc") and svc.runtime not in policy.allowed_runtimes:
        out.append(f"runtime {svc.runtime} {_DENIED} (security.allowed_runtimes)")
    out += [f"{what} {_DENIED} (security.{key})" for what, key in _host_settings(svc) if not getattr(policy, key)]
    if not policy.allow_foreign_containers:
        out += [f"{what} {_DENIED}: it shares with a container outside the stack (security.allow_foreign_containers)"
                for what in _foreign_containers(svc)]
    out += [f"cap_add {cap} {_DENIED} (security.allowed_capabilities)" for cap in _extra_caps(svc, policy)]
    for device in svc.devices:
        host = _norm(device.split(":", 1)[0])
        if not any(fnmatchcase(host, pattern) for pattern in policy.allowed_devices):
            out.append(f"device {host} {_DENIED} (security.allowed_devices)")
    for mount in svc.mounts:
        # A secret's path comes from the device's own secrets_dir, never from the file.
        if mount.type == "bind" and mount.source is not None and mount.origin != "secret":
            out += _host_path("bind mount of", mount.source, policy, root)
    if not policy.allow_unconfined:
        for opt in svc.security_opt:
            if _normalize_opt(opt) in _UNCONFINED:
                out.append(f"security_opt {opt} {_DENIED} (security.allow_unconfined)")
    return out


def _host_settings(svc: ServiceSpec) -> list[tuple[str, str]]:
    """(what the service asks, the policy flag that allows it) for kernel settings that reach the host."""
    asks = [
        (svc.uts == "host", "uts: host", "allow_host_uts"),
        (svc.userns_mode == "host", "userns_mode: host", "allow_host_userns"),
        (svc.cgroup == "host", "cgroup: host", "allow_host_cgroupns"),
        (svc.cgroup_parent is not None, f"cgroup_parent {svc.cgroup_parent}", "allow_cgroup_parent"),
        (bool(svc.device_cgroup_rules), "device_cgroup_rules", "allow_device_cgroup_rules"),
        (bool(svc.device_requests), "gpus / device reservations", "allow_gpus"),
        (bool(svc.storage_opt), "storage_opt", "allow_storage_opt"),
        (svc.oom_kill_disable, "oom_kill_disable", "allow_oom_protection"),
        ((svc.oom_score_adj or 0) < 0, f"oom_score_adj {svc.oom_score_adj}", "allow_oom_protection"),
    ]
    return [(what, key) for asked, what, key in asks if asked]


def _foreign_containers(svc: ServiceSpec) -> list[str]:
    """``container:X`` references: X is not part of the stack and may hold anything."""
    found = [f"{key}: {mode}" for key, mode in
             (("network_mode", svc.network_mode), ("ipc", svc.ipc), ("pid", svc.pid))
             if mode is not None and mode.startswith("container:")]
    found += [f"external_links: {link}" for link in svc.external_links]
    return found + [f"volumes_from: {item}" for item in svc.volumes_from if item.startswith("container:")]


def _volume(vol: VolumeSpec, policy: SecurityPolicy, root: str) -> list[str]:
    """A local volume with ``o: bind`` is a bind mount in disguise: same rule."""
    opts = dict(vol.driver_opts)
    if vol.external or vol.driver not in (None, "local") or "bind" not in opts.get("o", "").split(","):
        return []
    device = opts.get("device")
    if not device:
        return []
    return _host_path("device (o: bind)", device, policy, root)


def _extra_caps(svc: ServiceSpec, policy: SecurityPolicy) -> list[str]:
    allowed = {normalize_cap(c) for c in policy.allowed_capabilities}
    if "ALL" in allowed:
        return []
    extra = []
    for cap in svc.cap_add:
        name = normalize_cap(cap)
        if name not in allowed and name not in DOCKER_DEFAULT_CAPS:
            extra.append(name)
    return extra


def normalize_cap(cap: str) -> str:
    """``cap_net_admin`` / ``CAP_NET_ADMIN`` / ``NET_ADMIN`` -> ``NET_ADMIN``."""
    return cap.strip().upper().removeprefix("CAP_")


def _normalize_opt(opt: str) -> str:
    key, sep, value = opt.strip().partition("=")
    if not sep:  # the old colon form: seccomp:unconfined
        key, _, value = opt.strip().partition(":")
    return f"{key.lower()}={value.lower()}"


def _host_path(what: str, source: str, policy: SecurityPolicy, root: str) -> list[str]:
    path = _norm(source)
    if path_allowed(path, policy.allowed_bind_paths, root):
        return []
    socket = next((s for s in DOCKER_SOCKETS if _under(s, path)), None)
    if socket is not None:
        shown = path if path == socket else f"{path} (which holds {socket})"
        return [f"{what} {shown} {_DENIED}: the Docker socket gives root on the host "
                "(security.allowed_bind_paths)"]  # fmt: skip
    return [f"{what} {path} {_DENIED}: not under the repository or security.allowed_bind_paths"]


def path_allowed(path: str, allowed: tuple[str, ...], checkout_root: str) -> bool:
    """Is ``path`` inside the checkout or one of ``allowed``? ``/`` only if listed as ``/``."""
    path, root = _norm(path), _norm(checkout_root)
    if posixpath.isabs(root) and root != "/" and _under(path, root):
        return True
    return any(_under(path, _norm(prefix)) for prefix in allowed)


def _norm(path: str) -> str:
    """``normpath``, plus POSIX's kept leading ``//`` folded (Linux treats it as ``/``)."""
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")
