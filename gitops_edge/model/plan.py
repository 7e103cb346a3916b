"""A plan: ordered actions with a reason each, computed by ``core.plan``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gitops_edge.model.spec import NetworkSpec, ServiceSpec, VolumeSpec


class ActionKind(StrEnum):
    CREATE = "create"
    RECREATE = "recreate"
    REMOVE = "remove"
    START = "start"  # container exists with the right spec but is not running


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    stack: str
    service: str
    reason: str
    spec: ServiceSpec | None = None  # None for REMOVE
    image: str | None = None  # pinned reference to create from
    config_hash: str | None = None
    container_ids: tuple[str, ...] = ()  # existing containers this action replaces/removes
    wave: int = 0  # dependency wave: all of wave N start before wave N+1
    start_first: bool = False  # RECREATE: start the new container before stopping the old one
    number: int = 0  # the replica (com.docker.compose.container-number); 0: every container of the service
    replicas: int = 1  # how many the service runs: a lone replica is named by its service alone

    @property
    def target(self) -> str:
        """``web`` for a service's only container, ``web #2`` for one replica of several."""
        if self.number == 0 or (self.number == 1 and self.replicas == 1):
            return self.service
        return f"{self.service} #{self.number}"

    def describe(self) -> str:
        how = " (start-first)" if self.start_first else ""
        return f"{self.kind.value} {self.stack}/{self.target}{how}: {self.reason}"


@dataclass(frozen=True)
class StackPlan:
    stack: str
    revision: str | None  # None when the stack is being removed
    actions: tuple[Action, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()  # networks the stack needs (created if missing)
    volumes: tuple[VolumeSpec, ...] = ()  # volumes the stack needs (created if missing)
    remove_stack: bool = False  # stack left Git: containers and networks go, volumes stay
    unchanged: tuple[str, ...] = ()  # services kept as they are

    @property
    def is_noop(self) -> bool:
        return not self.actions and not self.remove_stack


@dataclass(frozen=True)
class Plan:
    revision: str
    stacks: tuple[StackPlan, ...] = ()

    @property
    def is_noop(self) -> bool:
        return all(sp.is_noop for sp in self.stacks)

    def actions(self) -> tuple[Action, ...]:
        return tuple(a for sp in self.stacks for a in sp.actions)
