"""Desired state -> Docker Engine API request bodies, the way Compose v2 builds them.

Pure functions, no docker import: the output is the JSON body of
``POST /containers/create`` (and of network/volume create), so unit tests can
check every field and the oracle test can compare it with what the real
``docker compose`` (v2.40, engine API 1.41) creates.

Compose details mirrored on purpose (checked against the oracle):

- named volumes and bind mounts that may create their host path go in
  ``HostConfig.Binds`` (``src:target:rw|ro``); binds that must not create the
  path and tmpfs mounts go in ``HostConfig.Mounts``;
- the service joins its first network (by key, Compose's tie order) at create
  time with aliases ``[container name, service, *aliases]``; API 1.41 allows
  one endpoint at create, so the others are connected before start;
- ``com.docker.compose.depends_on`` is ``svc:condition:restart`` joined by ``,``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: reading the engine (status, an idle sync) needs no spec model
    from gitops_edge.model.spec import (
        Healthcheck,
        InjectedFile,
        Ipam,
        Mount,
        NetworkAttachment,
        NetworkSpec,
        ServiceHook,
        ServiceSpec,
        StackSpec,
        VolumeSpec,
    )

# The Compose release whose container-creation semantics this module mirrors
# (verified by tests/integration/test_docker_oracle.py); Compose reads it as
# the "created by" version.
COMPOSE_VERSION = "2.40.3"

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CONFIG_HASH = "com.docker.compose.config-hash"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"
VERSION = "com.docker.compose.version"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"

EDGE_IMAGE = "io.gitops-edge.image"
EDGE_CONFIG_HASH = "io.gitops-edge.config-hash"
EDGE_REVISION = "io.gitops-edge.revision"
EDGE_PRE_STOP = "io.gitops-edge.pre-stop"  # the service's pre_stop hooks, JSON: whoever stops it runs them
EDGE_PREFIX = "io.gitops-edge."

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """One network a container joins: docker network name and endpoint settings."""

    network: str
    aliases: tuple[str, ...]
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    driver_opts: tuple[tuple[str, str], ...] = ()
    links: tuple[str, ...] = ()  # "container:alias"

    def settings(self) -> JsonDict:
        out: JsonDict = {"Aliases": list(self.aliases)}
        if self.links:
            out["Links"] = list(self.links)
        ipam = {k: v for k, v in (("IPv4Address", self.ipv4_address), ("IPv6Address", self.ipv6_address),
                                  ("LinkLocalIPs", list(self.link_local_ips))) if v}
        if ipam:
            out["IPAMConfig"] = ipam
        if self.driver_opts:
            out["DriverOpts"] = dict(self.driver_opts)
        return out


@dataclass(frozen=True)
class ContainerCreate:
    """Everything needed to create one container as Compose would."""

    name: str
    body: JsonDict  # POST /containers/create body (Config + HostConfig + NetworkingConfig)
    connect: tuple[Endpoint, ...] = ()  # further networks, joined after create and before start
    platform: str | None = None  # the create call's ``platform`` query parameter
    files: tuple[InjectedFile, ...] = ()  # inline configs, copied in after create, before start


def files_archive(files: tuple[InjectedFile, ...]) -> bytes:
    """A tar of the inline configs, extracted at ``/`` (what Compose copies in before start)."""
    import tarfile  # only to inject files, before a container starts

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            data = f.content.encode()
            info = tarfile.TarInfo(f.target.lstrip("/"))
            info.size, info.mode = len(data), f.mode
            info.uid = int(f.uid) if f.uid.isdigit() else 0
            info.gid = int(f.gid) if f.gid.isdigit() else 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def referenced_services(spec: ServiceSpec) -> tuple[str, ...]:
    """Services whose container id the create request needs (``service:x`` modes, volumes_from)."""
    out = [mode[8:] for mode in (spec.network_mode, spec.ipc, spec.pid)
           if mode is not None and mode.startswith("service:")]
    out += [item.split(":")[0] for item in spec.volumes_from if not item.startswith("container:")]
    return tuple(sorted(set(out)))


def _service_mode(mode: str | None, containers: Mapping[str, str], what: str) -> str | None:
    """``service:x`` -> ``container:<id of x>``, as Compose resolves it at create time."""
    if mode is None or not mode.startswith("service:"):
        return mode
    if mode[8:] not in containers:
        raise ValueError(f"{what} {mode!r} needs the id of that service's container")
    return f"container:{containers[mode[8:]]}"


def _tuning(spec: ServiceSpec) -> dict[str, Any]:
    """HostConfig fields of the kernel and resource settings; ``None`` leaves Docker's default."""
    blkio = spec.blkio

    def rates(entries: tuple[tuple[str, int], ...], field: str = "Rate") -> list[JsonDict] | None:
        return [{"Path": path, field: amount} for path, amount in entries] or None

    return {
        "UTSMode": spec.uts,
        "Isolation": spec.isolation,
        "UsernsMode": spec.userns_mode,
        "CgroupnsMode": spec.cgroup,
        "CgroupParent": spec.cgroup_parent,
        "DeviceCgroupRules": list(spec.device_cgroup_rules) or None,
        "Dns": list(spec.dns) or None,
        "DnsSearch": list(spec.dns_search) or None,
        "DnsOptions": list(spec.dns_opt) or None,
        "GroupAdd": list(spec.group_add) or None,
        "OomScoreAdj": spec.oom_score_adj,
        "MemorySwap": spec.memswap_limit,
        "MemorySwappiness": spec.mem_swappiness,
        "CpuShares": spec.cpu_shares,
        "CpuQuota": spec.cpu_quota,
        "CpuPeriod": spec.cpu_period,
        "CpuRealtimeRuntime": spec.cpu_rt_runtime,
        "CpuRealtimePeriod": spec.cpu_rt_period,
        "CpusetCpus": spec.cpuset,
        "CpuCount": spec.cpu_count,
        "CpuPercent": spec.cpu_percent,
        "BlkioWeight": None if blkio is None else blkio.weight,
        "BlkioWeightDevice": None if blkio is None else rates(blkio.weight_device, "Weight"),
        "BlkioDeviceReadBps": None if blkio is None else rates(blkio.device_read_bps),
        "BlkioDeviceWriteBps": None if blkio is None else rates(blkio.device_write_bps),
        "BlkioDeviceReadIOps": None if blkio is None else rates(blkio.device_read_iops),
        "BlkioDeviceWriteIOps": None if blkio is None else rates(blkio.device_write_iops),
        "Annotations": dict(spec.annotations) or None,
        "StorageOpt": dict(spec.storage_opt) or None,
        "DeviceRequests": [
            {"Driver": r.driver or "", "Count": r.count, "DeviceIDs": list(r.device_ids) or None,
             "Capabilities": [list(r.capabilities)], "Options": dict(r.options) or None}
            for r in spec.device_requests
        ] or None,
    }


def _volumes_from(spec: ServiceSpec, containers: Mapping[str, str]) -> list[str]:
    """A service becomes its container's id; ``container:x`` becomes ``x``.

    Compose drops a service entry's ``:ro``/``:rw`` (its container then gets
    the source's modes); gitops-edge keeps it, since dropping ``:ro`` would
    grant writes the file did not ask for.
    """
    out = []
    for item in spec.volumes_from:
        if item.startswith("container:"):
            out.append(item.removeprefix("container:"))
            continue
        service, _, mode = item.partition(":")
        if service not in containers:
            raise ValueError(f"volumes_from {service!r} needs the id of that service's container")
        out.append(f"{containers[service]}:{mode}" if mode else containers[service])
    return out


def container_name(stack: StackSpec | str, spec: ServiceSpec, number: int = 1) -> str:
    """``container_name`` if set (the loader allows it for one replica only), else Compose's
    ``<project>-<service>-<number>``."""
    project = stack if isinstance(stack, str) else stack.name
    return spec.container_name or f"{project}-{spec.name}-{number}"


def network_name(stack: StackSpec, key: str) -> str:
    for net in stack.networks:
        if net.key == key:
            return net.name
    return f"{stack.name}_{key}"


def volume_name(stack: StackSpec, key: str) -> str:
    for vol in stack.volumes:
        if vol.key == key:
            return vol.name
    return f"{stack.name}_{key}"


def restart_policy(policy: str) -> JsonDict:
    """``no | always | unless-stopped | on-failure[:N]`` -> ``HostConfig.RestartPolicy``."""
    name, _, count = policy.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise ValueError(f"unknown restart policy {policy!r}")
    retries = int(count) if count and name == "on-failure" else 0
    return {"Name": name, "MaximumRetryCount": retries}


def depends_on_label(spec: ServiceSpec) -> str:
    deps = sorted(spec.depends_on, key=lambda d: d.service)
    return ",".join(f"{d.service}:{d.condition}:{str(d.restart).lower()}" for d in deps)


def container_labels(
    stack: StackSpec, spec: ServiceSpec, *, image: str, image_id: str, config_hash: str, revision: str,
    number: int = 1,
) -> dict[str, str]:
    """The user's labels, then Compose's and ours (which win on a clash)."""
    labels = dict(spec.labels)
    labels.update(
        {
            PROJECT: stack.name,
            SERVICE: spec.name,
            NUMBER: str(number),
            ONEOFF: "False",
            CONFIG_HASH: config_hash,
            DEPENDS_ON: depends_on_label(spec),
            IMAGE: image_id,
            VERSION: COMPOSE_VERSION,
            EDGE_IMAGE: image,
            EDGE_CONFIG_HASH: config_hash,
            EDGE_REVISION: revision,
        }
    )
    if spec.pre_stop:
        labels[EDGE_PRE_STOP] = pre_stop_label(spec.pre_stop)
    return labels


def pre_stop_label(hooks: tuple[ServiceHook, ...]) -> str:
    """The hooks as a label: a rollback or a crash recovery stops containers whose spec it never saw."""
    from gitops_edge.core.serialize import to_data  # only when creating a container with hooks

    return json.dumps([to_data(h) for h in hooks], separators=(",", ":"))


def pre_stop_hooks(labels: Mapping[str, str]) -> tuple[ServiceHook, ...]:
    """The hooks of ``pre_stop_label``; none when the label is absent or not ours to read."""
    text = labels.get(EDGE_PRE_STOP)
    if not text:
        return ()
    from gitops_edge.core.serialize import from_data  # only for a container that has hooks
    from gitops_edge.model.spec import ServiceHook

    try:
        return tuple(from_data(ServiceHook, h) for h in json.loads(text))
    except (ValueError, TypeError, KeyError):
        return ()


def exec_create_args(hook: ServiceHook) -> JsonDict:
    """Keyword arguments of ``APIClient.exec_create`` for one hook, as Compose makes the exec."""
    return {
        "cmd": list(hook.command),
        "stdout": True,
        "stderr": True,
        "tty": False,
        "privileged": hook.privileged,
        "user": hook.user or "",
        "environment": [k if v is None else f"{k}={v}" for k, v in hook.environment] or None,
        "workdir": hook.working_dir,
    }


def _healthcheck(hc: Healthcheck) -> JsonDict:
    if hc.disable:
        return {"Test": ["NONE"]}
    out: JsonDict = {}
    if hc.test:
        out["Test"] = list(hc.test)
    for key, value in (
        ("Interval", hc.interval_ns),
        ("Timeout", hc.timeout_ns),
        ("StartPeriod", hc.start_period_ns),
        ("Retries", hc.retries),
    ):
        if value is not None:
            out[key] = value
    return out


def _mounts(stack: StackSpec, mounts: tuple[Mount, ...]) -> tuple[list[str], list[JsonDict]]:
    binds: list[str] = []
    api_mounts: list[JsonDict] = []
    for m in mounts:
        mode = "ro" if m.read_only else "rw"
        if m.bind_selinux and m.type == "bind":
            mode += f",{m.bind_selinux}"  # only the Binds form can relabel; Compose drops it in Mounts
        if m.type == "volume" and m.source and not m.volume_nocopy:
            binds.append(f"{volume_name(stack, m.source)}:{m.target}:{mode}")
        elif m.type == "volume":  # anonymous, or nocopy: Compose's Mounts form
            volume: JsonDict = {"Type": "volume", "Target": m.target, "ReadOnly": m.read_only}
            if m.source:
                volume["Source"] = volume_name(stack, m.source)
            if m.volume_nocopy:
                volume["VolumeOptions"] = {"NoCopy": True}
            api_mounts.append(volume)
        elif m.type == "bind" and m.bind_create_host_path and not m.bind_propagation:
            binds.append(f"{m.source}:{m.target}:{mode}")
        elif m.type == "bind":  # Compose's Mounts form: no host path creation, or a propagation
            bind: JsonDict = {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
            if m.bind_propagation:
                bind["BindOptions"] = {"Propagation": m.bind_propagation}
            elif m.bind_selinux or m.origin == "secret":
                bind["BindOptions"] = {}  # as Compose sends it (the Mounts API cannot relabel)
            api_mounts.append(bind)
        elif m.type == "tmpfs" and m.tmpfs_options is not None:
            pass  # the service-level `tmpfs:` key: HostConfig.Tmpfs, see _tmpfs
        elif m.type == "tmpfs":
            tmpfs: JsonDict = {"Type": "tmpfs", "Target": m.target, "ReadOnly": m.read_only}
            options = {k: v for k, v in (("SizeBytes", m.tmpfs_size), ("Mode", m.tmpfs_mode)) if v is not None}
            if options:
                tmpfs["TmpfsOptions"] = options
            api_mounts.append(tmpfs)
        else:
            raise ValueError(f"unsupported mount type {m.type!r} at {m.target}")
    return binds, api_mounts


def capability(name: str) -> str:
    """``net_admin`` -> ``CAP_NET_ADMIN`` (``ALL`` stays), as the Docker CLI and Compose send it."""
    up = name.strip().upper()
    return up if up == "ALL" or up.startswith("CAP_") else f"CAP_{up}"


def _device(text: str) -> JsonDict:
    parts = text.split(":")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 and parts[2] else "rwm"
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}


def _ports(spec: ServiceSpec) -> tuple[JsonDict, JsonDict]:
    """``expose`` entries go in as written (Docker reads ``80`` as ``80/tcp``), then ``ports``."""
    exposed: JsonDict = {item: {} for item in spec.expose}
    bindings: dict[str, list[JsonDict]] = {}
    for p in spec.ports:
        key = f"{p.target}/{p.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": p.host_ip or "", "HostPort": p.published or ""})
    return exposed, bindings


def endpoint_links(stack: StackSpec, spec: ServiceSpec, number: int = 1) -> tuple[str, ...]:
    """``links`` as Compose writes them on every network, for each replica of the target: alias,
    ``<service>-<number>`` and ``<project>-<service>-<number>`` (``number`` being the linking
    container's own, as Compose writes it); then ``external_links`` as ``container:alias``."""
    out: list[str] = []
    for link in spec.links:
        service, _, alias = link.partition(":")
        target = next((s for s in stack.services if s.name == service), None)
        names = ([container_name(stack, target, n) for n in range(target.replicas, 0, -1)]  # newest first
                 if target is not None else [f"{stack.name}-{service}-1"])
        for name in names:
            own = name if target is not None and target.container_name else f"{stack.name}-{service}-{number}"
            out += [f"{name}:{alias or service}", f"{name}:{service}-{number}", f"{name}:{own}"]
    for link in spec.external_links:
        name, _, alias = link.partition(":")
        out.append(f"{name}:{alias or name}")
    return tuple(out)


def endpoints(stack: StackSpec, spec: ServiceSpec, name: str, number: int = 1) -> tuple[Endpoint, ...]:
    """The service's networks, primary first (Compose: highest priority, then by key)."""
    attachments: list[NetworkAttachment] = sorted(spec.networks, key=lambda a: (-a.priority, a.network))
    has_default = any(n.key == "default" for n in stack.networks)
    links = endpoint_links(stack, spec, number)
    if not attachments and spec.network_mode is None and has_default:
        from gitops_edge.model.spec import NetworkAttachment

        attachments = [NetworkAttachment("default")]
    return tuple(
        Endpoint(
            network=network_name(stack, a.network),
            aliases=(name, spec.name, *a.aliases),
            ipv4_address=a.ipv4_address,
            ipv6_address=a.ipv6_address,
            link_local_ips=a.link_local_ips,
            driver_opts=a.driver_opts,
            links=links,
        )
        for a in attachments
    )


def container_create_args(
    stack: StackSpec,
    spec: ServiceSpec,
    *,
    image: str,
    image_id: str,
    config_hash: str,
    revision: str,
    name: str | None = None,
    number: int = 1,
    network_mode_container: str | None = None,
    service_containers: Mapping[str, str] | None = None,
) -> ContainerCreate:
    """The create request for ``spec``'s container.

    ``image`` is the pinned reference the container runs; ``image_id`` its
    local id (for Compose's image label). ``service_containers`` maps each
    of ``referenced_services(spec)`` to its container's id;
    ``network_mode_container`` is the older spelling for the one a
    ``network_mode: service:x`` refers to.
    """
    containers = dict(service_containers or {})
    if network_mode_container and spec.network_mode and spec.network_mode.startswith("service:"):
        containers.setdefault(spec.network_mode[8:], network_mode_container)
    name = name or container_name(stack, spec, number)
    nets = endpoints(stack, spec, name, number)
    exposed, bindings = _ports(spec)
    binds, mounts = _mounts(stack, spec.mounts)

    host: JsonDict = {
        "Binds": binds or None,
        "Mounts": mounts or None,
        "PortBindings": bindings,
        "RestartPolicy": restart_policy(spec.restart),
        "ReadonlyRootfs": spec.read_only,
        "Privileged": spec.privileged,
        "CapAdd": [capability(c) for c in spec.cap_add] or None,
        "CapDrop": [capability(c) for c in spec.cap_drop] or None,
        "SecurityOpt": list(spec.security_opt) or None,
        "Devices": [_device(d) for d in spec.devices] or None,
        "ExtraHosts": list(spec.extra_hosts) or None,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits] or None,
        "Sysctls": dict(spec.sysctls) or None,
        "Memory": spec.mem_limit or 0,
        "NanoCpus": round(spec.cpus * 1e9) if spec.cpus else 0,
        "VolumesFrom": _volumes_from(spec, containers) or None,
        "Tmpfs": {m.target: m.tmpfs_options for m in spec.mounts
                  if m.type == "tmpfs" and m.tmpfs_options is not None} or None,
    }
    for key, value in (
        ("ShmSize", spec.shm_size),
        ("Runtime", spec.runtime),
        ("IpcMode", _service_mode(spec.ipc, containers, "ipc")),
        ("PidMode", _service_mode(spec.pid, containers, "pid")),
        ("PidsLimit", spec.pids_limit),
        ("MemoryReservation", spec.mem_reservation),
        *_tuning(spec).items(),
    ):
        if value is not None:
            host[key] = value
    host["OomKillDisable"] = spec.oom_kill_disable  # Compose always sends it
    if spec.init is not None:
        host["Init"] = spec.init
    if spec.logging is not None:
        host["LogConfig"] = {"Type": spec.logging.driver or "", "Config": dict(spec.logging.options)}

    networking: JsonDict | None = None
    mode = spec.network_mode
    if mode is not None and mode.startswith("service:"):
        host["NetworkMode"] = _service_mode(mode, containers, "network_mode")
    elif mode is not None:
        host["NetworkMode"] = mode
    elif nets:
        host["NetworkMode"] = nets[0].network
        networking = {"EndpointsConfig": {nets[0].network: nets[0].settings()}}

    body: JsonDict = {
        "Image": image,
        "Labels": container_labels(
            stack, spec, image=image, image_id=image_id, config_hash=config_hash, revision=revision,
            number=number,
        ),
        "Env": [k if v is None else f"{k}={v}" for k, v in spec.environment],
        "Cmd": list(spec.command) if spec.command is not None else None,
        "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "ExposedPorts": exposed or None,
        "Tty": spec.tty,
        "OpenStdin": spec.stdin_open,
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": host,
    }
    for key, value in (
        ("Hostname", spec.hostname),
        ("Domainname", spec.domainname),
        ("MacAddress", spec.mac_address),
        ("User", spec.user),
        ("WorkingDir", spec.working_dir),
        ("StopSignal", spec.stop_signal),
    ):
        if value:
            body[key] = value
    if spec.stop_grace_period_ns is not None:
        body["StopTimeout"] = spec.stop_grace_period_ns // 1_000_000_000
    if spec.healthcheck is not None:
        body["Healthcheck"] = _healthcheck(spec.healthcheck)
    if networking is not None:
        body["NetworkingConfig"] = networking
    connect = nets[1:] if networking is not None else ()
    return ContainerCreate(name=name, body=body, connect=connect, platform=spec.platform, files=spec.files)


def network_create_args(stack: str, net: NetworkSpec) -> JsonDict:
    """Keyword arguments for ``APIClient.create_network``, with Compose's labels."""
    labels = dict(net.labels)
    labels.update({PROJECT: stack, NETWORK: net.key, VERSION: COMPOSE_VERSION})
    out: JsonDict = {
        "name": net.name,
        "driver": net.driver or "bridge",
        "options": dict(net.driver_opts) or None,
        "internal": net.internal,
        "labels": labels,
        "check_duplicate": True,
    }
    if net.attachable:
        out["attachable"] = True
    if net.enable_ipv6 is not None:
        out["enable_ipv6"] = net.enable_ipv6
    if net.ipam is not None:
        out["ipam"] = ipam_config(net.ipam)
    return out


def ipam_config(ipam: Ipam) -> JsonDict:
    """The ``IPAM`` object of a network create body (what docker-py's ``IPAMConfig`` builds)."""
    pools = []
    for pool in ipam.config:
        entry: JsonDict = {}
        for key, value in (("Subnet", pool.subnet), ("IPRange", pool.ip_range), ("Gateway", pool.gateway)):
            if value:
                entry[key] = value
        if pool.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(pool.aux_addresses)
        pools.append(entry)
    return {"Driver": ipam.driver or "default", "Config": pools, "Options": None}


def volume_create_args(stack: str, vol: VolumeSpec) -> JsonDict:
    """Keyword arguments for ``APIClient.create_volume``, with Compose's labels."""
    labels = dict(vol.labels)
    labels.update({PROJECT: stack, VOLUME: vol.key, VERSION: COMPOSE_VERSION})
    return {
        "name": vol.name,
        "driver": vol.driver or "local",
        "driver_opts": dict(vol.driver_opts) or None,
        "labels": labels,
    }
