"""The real engine (``Reconciler``, ``StackSwitch``, recovery) on in-memory ports.

No Docker, no Git, no SQLite: ``gitops_edge.ports.fakes`` stand in for them and
the fake clock only moves when the engine sleeps, so a health gate with a
30-second timeout runs in microseconds. Every behaviour shown here is also
shown on the real engine in tests/integration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitops_edge.engine import switch as switch_module
from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import EdgeError
from gitops_edge.model.config import AgentConfig, DeviceConfig, HealthConfig, SourceConfig
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.observed import KEPT_SUFFIX
from gitops_edge.model.result import SyncResult
from gitops_edge.model.spec import (
    Dependency,
    DesiredState,
    Healthcheck,
    NetworkAttachment,
    NetworkSpec,
    PortMapping,
    ServiceSpec,
    StackSpec,
)
from gitops_edge.ports.fakes import Crash, FakeClock, FakeContainer, FakeRuntime, FakeSource, FakeStore

REV1, REV2, REV3 = "1" * 40, "2" * 40, "3" * 40
HEALTH = HealthConfig(timeout_s=30, stable_for_s=2)


def service(
    name: str,
    image: str,
    *,
    after: tuple[str, ...] = (),
    completes: tuple[str, ...] = (),
    healthcheck: bool = False,
    port: str | None = None,
) -> ServiceSpec:
    """A service on the default network; ``port`` (a fixed host port) makes it stop-first."""
    deps = tuple(Dependency(d) for d in after) + tuple(
        Dependency(d, "service_completed_successfully") for d in completes
    )
    return ServiceSpec(
        name=name,
        image=image,
        networks=(NetworkAttachment("default"),),
        depends_on=deps,
        healthcheck=Healthcheck(("CMD", "true")) if healthcheck else None,
        restart="unless-stopped",
        ports=(PortMapping(80, port),) if port else (),
    )


def stack(name: str, *services: ServiceSpec) -> StackSpec:
    return StackSpec(
        name=name,
        path=name,
        compose_file=f"{name}/compose.yaml",
        services=services,
        networks=(NetworkSpec("default", f"{name}_default"),),
    )


def two_services(name: str, image: str) -> StackSpec:
    """``db`` (fixed host port: stop-first) and ``web`` after it (start-first): two waves."""
    return stack(name, service("db", image, port="5432"), service("web", image, after=("db",)))


@dataclass
class Bench:
    """One simulated device: the fakes, the commits the remote ref can point at, and the agent."""

    clock: FakeClock = field(default_factory=FakeClock)
    commits: dict[str, DesiredState | EdgeError] = field(default_factory=dict)
    config: AgentConfig = field(default_factory=lambda: AgentConfig(
        device=DeviceConfig("d1"), source=SourceConfig(url="fake://repo"), state_dir=Path("/nonexistent"),
        health=HEALTH,
    ))

    def __post_init__(self) -> None:
        self.runtime = FakeRuntime(self.clock)
        self.store = FakeStore(self.clock)
        self.source = FakeSource("")

    def commit(self, revision: str, *stacks: StackSpec) -> str:
        """The ref moves to a commit holding ``stacks``."""
        self.commits[revision] = DesiredState(revision, stacks)
        self.source.point(revision)
        return revision

    def bad_commit(self, revision: str, error: EdgeError) -> str:
        """The ref moves to a commit the loader rejects with ``error``."""
        self.commits[revision] = error
        self.source.point(revision)
        return revision

    def load(self, root: Path, subpath: str, revision: str) -> DesiredState:
        desired = self.commits[revision]
        if isinstance(desired, EdgeError):
            raise desired
        return desired

    def agent(self, config: AgentConfig | None = None) -> Reconciler:
        """A fresh agent process on the same device (the same containers and store)."""
        return Reconciler(config or self.config, self.source, self.runtime, self.store, self.load, clock=self.clock)

    def sync(self) -> SyncResult:
        return self.agent().sync()

    def containers(self, stack_name: str) -> dict[str, FakeContainer]:
        """The stack's containers by name; fails on two with one name (the fake allows none anyway)."""
        cs = self.runtime.stack(stack_name)
        assert len({c.name for c in cs}) == len(cs)
        return {c.name: c for c in cs}

    def live(self, stack_name: str) -> dict[str, str]:
        """Name -> id of the stack's containers, without one a failed gate set aside."""
        return {n: c.id for n, c in self.containers(stack_name).items() if not n.endswith(FAILED_SUFFIX)}

    def assert_converged(self, stack_spec: StackSpec, revision: str | None) -> None:
        """Exactly one running container per replica of each service, of ``revision``; nothing kept,
        no journal.

        A container that failed a gate may stay, stopped and set aside (``FAILED_SUFFIX``).
        ``revision`` None: containers an update left untouched keep the revision that made them.
        """
        cs = self.containers(stack_spec.name)
        failed = {n: c for n, c in cs.items() if n.endswith(FAILED_SUFFIX)}
        assert all(c.status != "running" and c.restart_policy == "no" for c in failed.values()), failed
        cs = {n: c for n, c in cs.items() if n not in failed}
        wanted = {f"{stack_spec.name}-{s.name}-{n}" for s in stack_spec.services for n in range(1, s.replicas + 1)}
        assert set(cs) == wanted, sorted(cs)
        for c in cs.values():
            assert not c.name.endswith(KEPT_SUFFIX)
            assert c.status == "running", (c.name, c.status)
            assert revision is None or c.revision == revision, c.name
            assert c.restart_policy == "unless-stopped", c.name
        assert self.store.journal() == {}


@pytest.fixture
def bench() -> Bench:
    return Bench()


class CrashPoints:
    """Stands in for ``engine.faults.crash_point``: records every point the switch reaches,
    and once armed with ``arm(point, n)`` the agent dies (``Crash``) the n-th time it reaches it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.target: tuple[str, int] | None = None

    def arm(self, point: str, n: int = 1) -> None:
        self.seen.clear()
        self.target = (point, n)

    def __call__(self, name: str) -> None:
        self.seen.append(name)
        if self.target is not None and self.target == (name, self.seen.count(name)):
            self.target = None
            raise Crash(name)


@pytest.fixture
def crash_points(monkeypatch: pytest.MonkeyPatch) -> CrashPoints:
    points = CrashPoints()
    monkeypatch.setattr(switch_module, "crash_point", points)
    return points
