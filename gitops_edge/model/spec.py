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
    hostname: str | None = None
    extra_hosts: tuple[str, ...] = ()  # "host:ip" (compose `host=ip` normalized to this)
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: Pairs = ()
    init: bool | None = None
    profiles: tuple[str, ...] = ()
    pull_policy: str = "missing"  # always | missing | never
    tty: bool = False
    stdin_open: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    key: str  # name under top-level `networks:`
    name: str  # docker network name (`<stack>_<key>` unless `name:` or external)
    external: bool = False
    driver: str | None = None
    driver_opts: Pairs = ()
    internal: bool = False
    labels: Pairs = ()


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
