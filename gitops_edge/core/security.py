"""The device security policy (README.md, "The device policy"): an allowlist over every host-reaching compose key.

Whoever can push to the repository must not thereby own the device. Every
compose key or option that can reach the host (its namespaces, devices,
files, kernel settings, confinement, other containers, objects the agent did
not create, log shipping) is refused unless the device-local policy allows
it; what is plainly safe passes. Each rule names the compose key, why it
reaches the host, and the ``security.*`` key that would allow it, so a refusal
tells the operator exactly what to set (or that nothing can allow it).

The rules are tables: a new compose key the loader learns is one more row.
Namespace rules read spec fields with ``getattr``, so a row can exist before
the loader parses its key.
Pure: paths are compared as normalized strings, nothing on disk is looked at.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from gitops_edge.model.observed import KEPT_SUFFIX
from gitops_edge.model.spec import Mount, NetworkSpec, ServiceSpec, StackSpec, VolumeSpec
from gitops_edge.model.trust import SecurityPolicy

KeyPath = tuple[str | int, ...]

# Docker's default capability set: adding one of these again grants nothing.
DOCKER_DEFAULT_CAPS = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})  # fmt: skip

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
SAFE_LOGGING_DRIVERS = frozenset({"json-file", "local", "none"})  # logs stay on the device
SAFE_RUNTIMES = frozenset({"runc"})
# tmpfs mount options that only size and own the memory a volume uses.
SAFE_TMPFS_OPTIONS = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "noexec", "nosuid",
                                "nodev", "ro", "rw", "noatime"})  # fmt: skip
# overlay (and similar) options whose value is a host path (``lowerdir`` may list several, ``:``-separated).
HOST_PATH_OPTIONS = frozenset({"lowerdir", "upperdir", "workdir", "source"})
SAFE_NETWORK_OPTIONS = frozenset({
    "com.docker.network.driver.mtu", "com.docker.network.bridge.enable_icc",
    "com.docker.network.bridge.enable_ip_masquerade", "com.docker.network.bridge.host_binding_ipv4",
})  # fmt: skip
# sysctls the kernel keeps per namespace: safe while the container has its own one of that kind.
_NET_SYSCTL = "net."
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "fs.mqueue.")  # fmt: skip

RESERVED = "reserved"
"""``policy_key`` of a finding no device setting can allow."""


@dataclass(frozen=True)
class Finding:
    """One refused key: where it is in the compose file, what it asks, which setting would allow it."""

    stack: str
    path: KeyPath  # compose key path, e.g. ("services", "web", "volumes", 0)
    what: str  # e.g. "bind mount of /etc"
    why: str  # how it reaches the host
    policy_key: str  # "allowed_bind_paths" (shown as security.allowed_bind_paths), or RESERVED

    @property
    def allow_hint(self) -> str:
        if self.policy_key == RESERVED:
            return "no device setting allows it"
        return f"allow with security.{self.policy_key}"

    def message(self) -> str:
        """``what: why (allow with security.KEY)``: the text after ``file:line: key``."""
        return f"{self.what} is not allowed by the device security policy: {self.why} ({self.allow_hint})"

    def __str__(self) -> str:
        return f"{self.stack}: {format_path(self.path)}: {self.message()}"


def format_path(path: KeyPath) -> str:
    """``("services", "web", "volumes", 0)`` -> ``services.web.volumes[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass(frozen=True)
class _Ctx:
    stack: StackSpec
    policy: SecurityPolicy
    root: str  # absolute checkout root: bind sources inside it are the repository's own files


# A service rule yields (sub-path under services.<name>, what, why, policy key).
_Hit = tuple[KeyPath, str, str, str]
ServiceRule = Callable[[ServiceSpec, _Ctx], Iterator[_Hit]]


def check_stack(stack: StackSpec, policy: SecurityPolicy, checkout_root: str) -> list[Finding]:
    """Every key of ``stack`` the policy refuses, in file order (services, then volumes, networks)."""
    ctx = _Ctx(stack, policy, checkout_root)
    out: list[Finding] = []
    for svc in stack.services:
        for rule in SERVICE_RULES:
            out += [Finding(stack.name, ("services", svc.name, *sub), what, why, key)
                    for sub, what, why, key in rule(svc, ctx)]  # fmt: skip
    for vol in stack.volumes:
        out += [Finding(stack.name, ("volumes", vol.key, *sub), what, why, key)
                for sub, what, why, key in _volume(vol, ctx)]  # fmt: skip
    for net in stack.networks:
        out += [Finding(stack.name, ("networks", net.key, *sub), what, why, key)
                for sub, what, why, key in _network(net, ctx)]  # fmt: skip
    return out


# -- service rules ---------------------------------------------------------------------


def _privileged(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    if svc.privileged and not ctx.policy.allow_privileged:
        yield ("privileged",), "privileged", "every device and capability of the host", "allow_privileged"


def _privileged_hooks(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    """A privileged hook is a privileged process in the container: the same power, the same setting."""
    if ctx.policy.allow_privileged:
        return
    for key in ("post_start", "pre_stop"):
        for i, hook in enumerate(getattr(svc, key)):
            if hook.privileged:
                yield ((key, i, "privileged"), f"privileged {key} hook",
                       "every capability of the host, in a process exec'd into the container", "allow_privileged")


# (compose key, host flag, why host mode reaches the host)
_NAMESPACES: tuple[tuple[str, str, str], ...] = (
    ("network_mode", "allow_host_network", "the host's network stack, its interfaces and localhost services"),
    ("pid", "allow_host_pid", "every host process is visible and signalable"),
    ("ipc", "allow_host_ipc", "the host's shared memory and message queues"),
    ("uts", "allow_host_uts", "can change the host's hostname"),
    ("userns_mode", "allow_host_userns", "no user namespace remapping: root inside is root outside"),
    ("cgroup", "allow_host_cgroupns", "the host's whole cgroup tree"),
)


def _namespaces(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    for key, flag, why in _NAMESPACES:
        mode = getattr(svc, key, None)
        if not isinstance(mode, str):
            continue
        if mode == "host" and not getattr(ctx.policy, flag):
            yield (key,), f"{key}: host", why, flag
        elif mode.startswith("container:") and not ctx.policy.allow_foreign_containers:
            yield ((key,), f"{key}: {mode}",
                   "joins a container this stack does not own (which may itself share the host's)",
                   "allow_foreign_containers")  # fmt: skip


def _foreign(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    """``volumes_from: container:X`` and ``external_links``: X is outside the stack and may hold anything."""
    if ctx.policy.allow_foreign_containers:
        return
    for i, src in enumerate(getattr(svc, "volumes_from", None) or ()):
        if str(src).startswith("container:"):
            yield (("volumes_from", i), f"volumes_from {src}", "mounts the volumes of a container this stack "
                   "does not own", "allow_foreign_containers")  # fmt: skip
    for i, link in enumerate(getattr(svc, "external_links", None) or ()):
        yield (("external_links", i), f"external_links {link}", "links to a container this stack does not own",
               "allow_foreign_containers")  # fmt: skip


def _kernel(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    """Settings that reach the host's kernel or storage driver rather than the container."""
    policy = ctx.policy
    if getattr(svc, "storage_opt", None) and not policy.allow_storage_opt:
        yield (("storage_opt",), "storage_opt", "options of the host's storage driver for this container",
               "allow_storage_opt")  # fmt: skip
    if getattr(svc, "oom_kill_disable", False) and not policy.allow_oom_protection:
        yield (("oom_kill_disable",), "oom_kill_disable", "the host's OOM killer would kill host processes "
               "instead", "allow_oom_protection")  # fmt: skip
    adj = getattr(svc, "oom_score_adj", None)
    if isinstance(adj, int) and adj < 0 and not policy.allow_oom_protection:
        yield (("oom_score_adj",), f"oom_score_adj {adj}", "protects the container from the OOM killer at the "
               "host's expense", "allow_oom_protection")  # fmt: skip


def _capabilities(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    allowed = {normalize_cap(c) for c in ctx.policy.allowed_capabilities}
    if "ALL" in allowed:
        return
    for i, cap in enumerate(svc.cap_add):
        name = normalize_cap(cap)
        if name not in allowed and name not in DOCKER_DEFAULT_CAPS:
            yield ("cap_add", i), f"cap_add {name}", "a capability beyond Docker's default set", "allowed_capabilities"


def _devices(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    for i, device in enumerate(svc.devices):
        host = device.split(":", 1)[0]
        host = _norm(host) if host.startswith("/") else host
        if not any(fnmatchcase(host, pattern) for pattern in ctx.policy.allowed_devices):
            yield ("devices", i), f"device {host}", "direct access to host hardware", "allowed_devices"
    if getattr(svc, "device_cgroup_rules", None) and not ctx.policy.allow_device_cgroup_rules:
        yield (("device_cgroup_rules",), "device_cgroup_rules", "lets the container open host devices it can "
               "create", "allow_device_cgroup_rules")  # fmt: skip
    if getattr(svc, "device_requests", None) and not ctx.policy.allow_gpus:
        yield (("gpus",), "gpus / device reservations", "direct access to the host's GPUs and devices",
               "allow_gpus")  # fmt: skip


def _mounts(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    for i, mount in enumerate(svc.mounts):
        # a secret's path comes from the device's own secrets_dir, never from the file
        if mount.type == "bind" and mount.source is not None and getattr(mount, "origin", None) != "secret":
            yield from _bind(("volumes", i), mount, ctx)


def _bind(path: KeyPath, mount: Mount, ctx: _Ctx) -> Iterator[_Hit]:
    assert mount.source is not None
    source, root = _norm(mount.source), _norm(ctx.root)
    if posixpath.isabs(root) and root != "/" and _under(source, root):
        if not mount.read_only and (source == root or _under(source, root + "/.git")):
            yield (path, f"bind mount of {source}", "the agent's own Git checkout, writable: a container "
                   "writing its .git would run programs on the host", RESERVED)  # fmt: skip
        return  # the repository's own files
    if path_allowed(source, ctx.policy.allowed_bind_paths, ""):
        return
    socket = next((s for s in DOCKER_SOCKETS if _under(s, source)), None)
    if socket is not None:
        shown = source if source == socket else f"{source} (which holds {socket})"
        yield path, f"bind mount of {shown}", "the Docker socket gives root on the host", "allowed_bind_paths"
        return
    yield path, f"bind mount of {source}", "a host path outside the repository", "allowed_bind_paths"


def _security_opts(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    if ctx.policy.allow_unconfined:
        return
    allowed = {normalize_security_opt(o) for o in ctx.policy.allowed_security_opts}
    for i, opt in enumerate(svc.security_opt):
        norm = normalize_security_opt(opt)
        if norm in allowed or _tightens(norm):
            continue
        yield (("security_opt", i), f"security_opt {opt}", "changes the container's confinement "
               "(seccomp, AppArmor, SELinux, masked paths)", "allowed_security_opts")  # fmt: skip


def _tightens(norm: str) -> bool:
    """``no-new-privileges`` (true) only ever removes privileges."""
    return norm in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges=1")


def _sysctls(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    own_net = svc.network_mode is None or not (svc.network_mode == "host" or svc.network_mode.startswith("container:"))
    ipc = getattr(svc, "ipc", None)
    own_ipc = not (isinstance(ipc, str) and (ipc == "host" or ipc.startswith("container:")))
    for name, _value in svc.sysctls:
        if (own_net and name.startswith(_NET_SYSCTL)) or (own_ipc and name.startswith(_IPC_SYSCTLS)):
            continue
        if any(fnmatchcase(name, pattern) for pattern in ctx.policy.allowed_sysctls):
            continue
        yield (("sysctls", name), f"sysctl {name}", "a kernel setting not confined to the container's own "
               "namespace", "allowed_sysctls")  # fmt: skip


def _logging(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    driver = svc.logging.driver if svc.logging is not None else None
    if driver is None or driver in SAFE_LOGGING_DRIVERS or driver in ctx.policy.allowed_logging_drivers:
        return
    yield (("logging", "driver"), f"logging driver {driver}", "sends the logs off the device or into host "
           "services", "allowed_logging_drivers")  # fmt: skip


def _runtime(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    runtime = getattr(svc, "runtime", None)
    if runtime and runtime not in SAFE_RUNTIMES and runtime not in ctx.policy.allowed_runtimes:
        yield ("runtime",), f"runtime {runtime}", "another OCI runtime installed on the host", "allowed_runtimes"
    if getattr(svc, "cgroup_parent", None) and not ctx.policy.allow_cgroup_parent:
        yield ("cgroup_parent",), "cgroup_parent", "places the container in a host cgroup", "allow_cgroup_parent"


def _container_name(svc: ServiceSpec, ctx: _Ctx) -> Iterator[_Hit]:
    name = svc.container_name
    if name is not None and name.endswith(KEPT_SUFFIX):
        yield (("container_name",), f"container_name {name}", f"the suffix {KEPT_SUFFIX} marks the agent's "
               "own rollback containers", RESERVED)  # fmt: skip


SERVICE_RULES: tuple[ServiceRule, ...] = (
    _privileged, _privileged_hooks, _namespaces, _foreign, _capabilities, _devices, _kernel, _mounts,
    _security_opts, _sysctls, _logging, _runtime, _container_name,
)  # fmt: skip
"""Plainly safe, so no rule: ports, extra_hosts, hostname, dns, user, ulimits, tmpfs, environment, labels."""


# -- top-level volumes and networks -------------------------------------------------------


def _owned_name(kind: str, key: str, name: str, external: bool, ctx: _Ctx, allowed: tuple[str, ...],
                policy_key: str) -> Iterator[_Hit]:  # fmt: skip
    if name in allowed:
        return
    if external:
        yield (("external",), f"external {kind} {name}", f"a {kind} the agent did not create", policy_key)
    elif name != f"{ctx.stack.name}_{key}":
        yield (("name",), f"{kind} name {name}", f"may be another project's {kind} (not {ctx.stack.name}_{key})",
               policy_key)  # fmt: skip


def _volume(vol: VolumeSpec, ctx: _Ctx) -> Iterator[_Hit]:
    policy = ctx.policy
    yield from _owned_name("volume", vol.key, vol.name, vol.external, ctx, policy.allowed_external_volumes,
                           "allowed_external_volumes")  # fmt: skip
    if vol.external:
        return
    if vol.driver not in (None, "local"):
        if vol.driver not in policy.allowed_volume_drivers:
            yield (("driver",), f"volume driver {vol.driver}", "a volume plugin running on the host",
                   "allowed_volume_drivers")  # fmt: skip
        return
    yield from _local_volume_opts(dict(vol.driver_opts), policy)


def _local_volume_opts(opts: dict[str, str], policy: SecurityPolicy) -> Iterator[_Hit]:
    """The local driver's options are a mount(2) the engine makes on the host, as root."""
    if not opts:
        return
    for key in sorted(set(opts) - {"type", "o", "device"}):
        yield (("driver_opts", key), f"driver_opts {key}", "an option the local driver passes to the host",
               "allowed_volume_types")  # fmt: skip
    options = [o.strip() for o in opts.get("o", "").split(",") if o.strip()]
    names = {o.partition("=")[0] for o in options}
    mount_type = opts.get("type", "none")
    device = opts.get("device", "")
    if names & {"bind", "rbind"}:
        # a bind in disguise: the device is a host path, and mount(2) follows symlinks in it,
        # so a path inside the repository is no better than any other
        if not path_allowed(device, policy.allowed_bind_paths, ""):
            yield (("driver_opts", "device"), f"volume bind of {_norm(device) if device else '(no device)'}",
                   "a host path (o: bind)", "allowed_bind_paths")  # fmt: skip
        return
    for opt in options:
        name, _, value = opt.partition("=")
        if name in HOST_PATH_OPTIONS:
            for path in value.split(":"):
                if not path_allowed(path, policy.allowed_bind_paths, ""):
                    yield (("driver_opts", "o"), f"volume option {name}={path}", "a host path",
                           "allowed_bind_paths")  # fmt: skip
    if mount_type == "tmpfs":
        unsafe = sorted(names - SAFE_TMPFS_OPTIONS - HOST_PATH_OPTIONS)
        if unsafe and "tmpfs" not in policy.allowed_volume_types:
            yield (("driver_opts", "o"), f"tmpfs option {', '.join(unsafe)}", "not a size or ownership option",
                   "allowed_volume_types")  # fmt: skip
        return
    if mount_type not in policy.allowed_volume_types:
        yield (("driver_opts", "type"), f"volume of type {mount_type}", "a filesystem the engine mounts on the "
               "host (proc, sysfs, overlay, nfs, a block device...)", "allowed_volume_types")  # fmt: skip
    elif device.startswith("/dev/") and not any(fnmatchcase(_norm(device), p) for p in policy.allowed_devices):
        yield (("driver_opts", "device"), f"volume device {device}", "a host block device", "allowed_devices")


def _network(net: NetworkSpec, ctx: _Ctx) -> Iterator[_Hit]:
    policy = ctx.policy
    yield from _owned_name("network", net.key, net.name, net.external, ctx, policy.allowed_external_networks,
                           "allowed_external_networks")  # fmt: skip
    if net.external:
        return
    if net.driver not in (None, "bridge") and net.driver not in policy.allowed_network_drivers:
        yield (("driver",), f"network driver {net.driver}", "puts containers on the host's own network "
               "(macvlan, ipvlan, host) or a plugin", "allowed_network_drivers")  # fmt: skip
    for key, _value in net.driver_opts:
        if key not in SAFE_NETWORK_OPTIONS and key not in policy.allowed_network_options:
            yield (("driver_opts", key), f"network option {key}", "changes the host's bridge or interfaces",
                   "allowed_network_options")  # fmt: skip


# -- helpers ---------------------------------------------------------------------------


def normalize_cap(cap: str) -> str:
    """``cap_net_admin`` / ``CAP_NET_ADMIN`` / ``NET_ADMIN`` -> ``NET_ADMIN``."""
    return cap.strip().upper().removeprefix("CAP_")


def normalize_security_opt(opt: str) -> str:
    """``seccomp:unconfined`` / ``Seccomp=Unconfined`` -> ``seccomp=unconfined`` (values kept as written
    apart from case for known keywords; a JSON profile is kept verbatim)."""
    text = opt.strip()
    key, sep, value = text.partition("=")
    colon_key, colon, colon_value = text.partition(":")
    if not sep or (colon and len(colon_key) < len(key)):  # the old colon form: seccomp:unconfined
        key, sep, value = colon_key, colon, colon_value
    key = key.strip().lower()
    if not sep:
        return key
    value = value.strip()
    if key != "seccomp" or not value.startswith("{"):
        value = value.lower()
    return f"{key}={value}"


def path_allowed(path: str, allowed: tuple[str, ...], checkout_root: str) -> bool:
    """Is ``path`` inside the checkout or one of ``allowed``? ``/`` only if listed as ``/``."""
    if not path.startswith("/"):
        return False
    path, root = _norm(path), _norm(checkout_root) if checkout_root else ""
    if root and posixpath.isabs(root) and root != "/" and _under(path, root):
        return True
    return any(_under(path, _norm(prefix)) for prefix in allowed)


def _norm(path: str) -> str:
    """``normpath``, plus POSIX's kept leading ``//`` folded (Linux treats it as ``/``)."""
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")
