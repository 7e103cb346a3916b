"""Observed state: what the Docker engine runs, as read from labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotation only: reading the engine needs no spec model
    from gitops_edge.model.spec import ServiceHook

KEPT_SUFFIX = "-gitops-edge-kept"
"""An old container held for rollback is renamed to ``<name><KEPT_SUFFIX>``
(labels cannot change after create, so the name is the durable mark)."""


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    stack: str  # com.docker.compose.project
    service: str  # com.docker.compose.service
    number: int  # com.docker.compose.container-number
    status: str  # docker state: created | running | exited | restarting | paused | dead
    health: str | None = None  # starting | healthy | unhealthy | None (no healthcheck)
    restart_count: int = 0
    image: str | None = None  # io.gitops-edge.image: the pinned reference it was created from
    config_hash: str | None = None  # io.gitops-edge.config-hash
    revision: str | None = None  # io.gitops-edge.revision
    managed: bool = False  # carries io.gitops-edge.* labels (else created by compose or a human)
    kept: bool = False  # renamed with KEPT_SUFFIX: an old container held for rollback
    binds: tuple[str, ...] = ()  # host paths of its bind mounts (revision trees it holds on to)


@dataclass(frozen=True)
class ObservedState:
    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[str, ...] = ()  # docker network names
    volumes: tuple[str, ...] = ()  # docker volume names
    network_projects: tuple[tuple[str, str], ...] = ()  # (network name, its com.docker.compose.project label)

    def stacks(self) -> tuple[str, ...]:
        return tuple(sorted({c.stack for c in self.containers}))

    def networks_of(self, stack: str) -> tuple[str, ...]:
        """The networks labelled as this compose project's: ownership by label, not by name."""
        return tuple(sorted(name for name, project in self.network_projects if project == stack))

    def for_stack(self, stack: str) -> tuple[ObservedContainer, ...]:
        return tuple(c for c in self.containers if c.stack == stack)


@dataclass(frozen=True)
class ContainerState:
    """One inspection of a container, as the health gate needs it."""

    status: str  # created | running | restarting | exited | dead | paused | removing
    health: str | None = None  # starting | healthy | unhealthy | None (no healthcheck)
    exit_code: int = 0
    oom_killed: bool = False
    restart_count: int = 0
    running_for_s: float = 0.0  # seconds since it (last) started; 0 when not running
    health_log: str = ""  # output of the last failing healthcheck probe, trimmed
    name: str = ""  # without the leading slash
    restart_policy: str = "no"  # as compose writes it: no | always | unless-stopped | on-failure[:N]
    pre_stop: tuple[ServiceHook, ...] = ()  # the hooks it was created with (its io.gitops-edge.pre-stop label)


@dataclass(frozen=True)
class HookRun:
    """One hook exec: its exit code (None: still running at the deadline) and the tail of its output."""

    exit_code: int | None
    output: str = ""
