"""Desired state: what a compose file in Git asks a device to run.

Values are normalized the way ``docker compose config`` normalizes them
(durations in nanoseconds, sizes in bytes, mappings as sorted pairs), so two
files that mean the same thing produce equal specs and equal hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Pairs = tuple[tuple[str, str], ...]
"""A mapping as a sorted tuple of (key, value) pairs: hashable and ordered."""


@dataclass(frozen=True)
class PortMapping:
    target: int
    published: str | None = None  # host port or range ("8080", "8000-8010"); None: ephemeral
    host_ip: str | None = None
    protocol: str = "tcp"


@dataclass(frozen=True)
class Mount:
    type: str  # "volume" | "bind" | "tmpfs"
    target: str
    source: str | None = None  # volume key (not the docker name) or absolute host path
    read_only: bool = False
    tmpfs_size: int | None = None  # bytes
    bind_create_host_path: bool = True
    # A bind of a repository path: "<repo-relative path> sha256:<hex>" of what the
    # revision tree holds there (the loader fills it in). The spec hash uses it instead
    # of ``source``, which names a per-revision tree, so new content means a new container.
    content: str | None = None
    bind_selinux: str | None = None  # "z" (shared) or "Z" (private) relabel
    origin: str | None = None  # "config" or "secret": a file Compose mounts for those keys
    tmpfs_mode: int | None = None  # long syntax tmpfs.mode
    bind_propagation: str | None = None  # rprivate, private, rshared, shared, rslave, slave
    volume_nocopy: bool = False  # do not copy the image's files into a new volume
    tmpfs_options: str | None = None  # service-level `tmpfs:` entry's options, as written ("size=1m,mode=1770")


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]  # ("CMD", ...), ("CMD-SHELL", "..."), or ("NONE",)
    interval_ns: int | None = None
    timeout_ns: int | None = None
    retries: int | None = None
    start_period_ns: int | None = None
    disable: bool = False


@dataclass(frozen=True)
class NetworkAttachment:
    network: str  # key under top-level `networks:` (e.g. "default")
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int = 0  # the highest is the network the container is created on
    link_local_ips: tuple[str, ...] = ()
    driver_opts: Pairs = ()


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str = "service_started"  # | service_healthy | service_completed_successfully
    restart: bool = False
    required: bool = True


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Logging:
    driver: str | None = None
    options: Pairs = ()


@dataclass(frozen=True)
class InjectedFile:
    """A ``configs`` entry with ``content``/``environment``: written into the container before start."""

    target: str
    content: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass(frozen=True)
class DeviceRequest:
    """A ``gpus`` entry or a ``deploy.resources.reservations.devices`` entry."""

    driver: str | None = None
    count: int = 0  # -1: all
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    options: Pairs = ()


@dataclass(frozen=True)
class Blkio:
    """``blkio_config``: weights and throttles per host device path."""

    weight: int | None = None
    weight_device: tuple[tuple[str, int], ...] = ()
    device_read_bps: tuple[tuple[str, int], ...] = ()
    device_write_bps: tuple[tuple[str, int], ...] = ()
    device_read_iops: tuple[tuple[str, int], ...] = ()
    device_write_iops: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ServiceHook:
    """A ``post_start`` or ``pre_stop`` entry: a command exec'd in the service's running container."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False  # reaches the host: behind security.allow_privileged
    working_dir: str | None = None
    environment: tuple[tuple[str, str | None], ...] = ()  # sorted; None: a bare name, unset in the exec


@dataclass(frozen=True)
class ServiceSpec:
    """One Compose service, fully interpolated and normalized."""

    name: str
    image: str  # as written in the compose file (tag or digest reference)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str | None], ...] = ()  # sorted; None = unset
    ports: tuple[PortMapping, ...] = ()
    mounts: tuple[Mount, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()  # empty when network_mode is set
    network_mode: str | None = None  # "host", "none", "bridge", "service:x", "container:x"
    depends_on: tuple[Dependency, ...] = ()
    healthcheck: Healthcheck | None = None
    restart: str = "no"  # no | always | on-failure[:N] | unless-stopped
    labels: Pairs = ()
    user: str | None = None
    working_dir: str | None = None
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # "host:container[:perms]"
    privileged: bool = False
    security_opt: tuple[str, ...] = ()
    logging: Logging | None = None
    mem_limit: int | None = None  # bytes
    cpus: float | None = None
    stop_grace_period_ns: int | None = None
    stop_signal: str | None = None
    container_name: str | None = None
    replicas: int = 1  # deploy.replicas or scale: containers <project>-<service>-1..N (0: none)
    hostname: str | None = None
    extra_hosts: tuple[str, ...] = ()  # "host:ip" (compose `host=ip` normalized to this)
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: Pairs = ()
    init: bool | None = None
    profiles: tuple[str, ...] = ()
    pull_policy: str = "missing"  # always | missing | never | daily | weekly | every_<duration>
    tty: bool = False
    stdin_open: bool = False
    expose: tuple[str, ...] = ()  # "80", "8000-8010/udp": exposed, not published
    shm_size: int | None = None  # bytes
    platform: str | None = None  # "linux/arm64"
    runtime: str | None = None  # OCI runtime name (reaches the host: policy)
    volumes_from: tuple[str, ...] = ()  # "service[:ro|rw]" or "container:name[:ro|rw]"
    ipc: str | None = None  # "shareable", "private", "none", "host", "service:x", "container:x"
    pid: str | None = None  # "host", "service:x", "container:x"
    pids_limit: int | None = None  # from pids_limit or deploy.resources.limits.pids
    mem_reservation: int | None = None  # bytes, from deploy.resources.reservations.memory
    uts: str | None = None  # "host"
    isolation: str | None = None  # "default": the only isolation a Linux engine has
    userns_mode: str | None = None  # "host"
    cgroup: str | None = None  # cgroup namespace: "host" | "private"
    cgroup_parent: str | None = None
    device_cgroup_rules: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    domainname: str | None = None
    mac_address: str | None = None
    group_add: tuple[str, ...] = ()
    oom_score_adj: int | None = None
    oom_kill_disable: bool = False
    memswap_limit: int | None = None  # bytes; -1: unlimited swap
    mem_swappiness: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_rt_period: int | None = None
    cpuset: str | None = None
    cpu_count: int | None = None
    cpu_percent: int | None = None
    blkio: Blkio | None = None
    annotations: Pairs = ()
    device_requests: tuple[DeviceRequest, ...] = ()  # reservations.devices, then gpus
    storage_opt: Pairs = ()
    files: tuple[InjectedFile, ...] = ()  # inline configs
    links: tuple[str, ...] = ()  # "service" or "service:alias" (legacy links, as endpoint links)
    external_links: tuple[str, ...] = ()  # "container" or "container:alias", outside the stack
    post_start: tuple[ServiceHook, ...] = ()  # exec'd in order right after the container starts
    pre_stop: tuple[ServiceHook, ...] = ()  # exec'd in order before the agent stops the container


@dataclass(frozen=True)
class IpamPool:
    subnet: str | None = None
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: Pairs = ()


@dataclass(frozen=True)
class Ipam:
    driver: str | None = None
    config: tuple[IpamPool, ...] = ()


@dataclass(frozen=True)
class NetworkSpec:
    key: str  # name under top-level `networks:`
    name: str  # docker network name (`<stack>_<key>` unless `name:` or external)
    external: bool = False
    driver: str | None = None
    driver_opts: Pairs = ()
    internal: bool = False
    labels: Pairs = ()
    ipam: Ipam | None = None
    attachable: bool = False
    enable_ipv6: bool | None = None


@dataclass(frozen=True)
class VolumeSpec:
    key: str
    name: str  # docker volume name (`<stack>_<key>` unless `name:` or external)
    external: bool = False
    driver: str | None = None
    driver_opts: Pairs = ()
    labels: Pairs = ()


@dataclass(frozen=True)
class StackSpec:
    """One directory of the desired state: a Compose project."""

    name: str
    path: str  # directory, relative to the repository root
    compose_file: str  # relative to the repository root
    services: tuple[ServiceSpec, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()

    def service(self, name: str) -> ServiceSpec:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)


@dataclass(frozen=True)
class DesiredState:
    revision: str  # the Git commit the state was loaded from
    stacks: tuple[StackSpec, ...] = field(default_factory=tuple)

    def stack(self, name: str) -> StackSpec | None:
        for st in self.stacks:
            if st.name == name:
                return st
        return None
