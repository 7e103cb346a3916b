"""In-memory implementations of the ports, to drive the real engine in fast tests.

``FakeRuntime`` keeps containers in a dict and lets a test script how each
image behaves once started (healthy, unhealthy, exits, restarts, OOM-killed,
slow to start); ``FakeClock`` only moves when slept on, so a whole health gate
runs in microseconds; ``FakeStore`` keeps the journal in its stored JSON form,
as the SQLite store does. Every behaviour the fakes model is also shown once on
the real engine (tests/integration). They import only model, core, ports and
errors, so they can live in the package beside the ports they implement.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from gitops_edge.errors import EdgeError, EngineConflictError, EngineNotFoundError, ImageNotFoundError
from gitops_edge.model.condition import StackOutcome
from gitops_edge.model.evidence import FAILED_SUFFIX, Evidence
from gitops_edge.model.observed import KEPT_SUFFIX, ContainerState, HookRun, ObservedContainer, ObservedState
from gitops_edge.model.spec import NetworkSpec, ServiceHook, ServiceSpec, StackSpec, VolumeSpec
from gitops_edge.model.status import AppliedStack, Outcome, SyncRecord
from gitops_edge.model.step import Step
from gitops_edge.ports.source import Checkout
from gitops_edge.ports.store import RawJournal

# -- clock -----------------------------------------------------------------------------------


class FakeClock:
    """Time that passes only when someone sleeps (or the test calls ``advance``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = 1000.0
        self.start = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, noon
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t - 1000.0)


# -- runtime ---------------------------------------------------------------------------------


class Run(StrEnum):
    """How a container of a scripted image behaves once started."""

    RUNNING = "running"  # stays up; no healthcheck
    HEALTHY = "healthy"  # healthcheck: starting, then healthy after ``after_s`` (a slow start)
    UNHEALTHY = "unhealthy"  # healthcheck: starting, then unhealthy after ``after_s``
    EXIT = "exit"  # exits with ``exit_code`` after ``after_s``
    RESTART = "restart"  # crashes after ``after_s`` and is restarted by its policy, again and again
    OOM = "oom"  # killed by the OOM killer after ``after_s``
    NEVER = "never"  # healthcheck stays ``starting`` forever (the gate times out)


@dataclass(frozen=True)
class Script:
    run: Run = Run.RUNNING
    after_s: float = 0.0
    exit_code: int = 1


@dataclass
class FakeContainer:
    id: str
    name: str
    stack: str
    service: str
    image: str
    config_hash: str
    revision: str
    restart_policy: str
    script: Script
    status: str = "created"
    started_at: float = 0.0
    exit_code: int = 0
    oom_killed: bool = False
    restarts: int = 0
    managed: bool = True
    number: int = 1  # com.docker.compose.container-number
    pre_stop: tuple[ServiceHook, ...] = ()


class Crash(BaseException):
    """The agent died here (SIGKILL): not an error, nothing of the engine may catch it."""


FAKE_EVENT_STEP_S = 0.25  # how far fake time moves per wait: scripted changes raise no events

Hook = Callable[[str, str], None]
"""Called with (operation, target) before every runtime operation; may raise."""


class FakeRuntime:
    """A container engine in a dict: enough of Docker's behaviour for the update state machine."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.containers: dict[str, FakeContainer] = {}
        self.networks: set[str] = set()
        self.network_projects: dict[str, str] = {}  # network name -> its compose project label
        self.volumes: set[str] = set()
        self.pulled: set[str] = set()
        self.image_size = 10_000_000  # bytes, every image
        self.free: int | None = None  # free bytes on the data root; None: unknown
        self.scripts: dict[str, Script] = {}  # image reference as written -> behaviour
        self.missing: set[str] = set()  # image references the registry does not have
        self.failures: dict[str, list[EdgeError]] = {}  # operation -> errors to raise, in turn
        self.before: Hook | None = None
        self.calls: list[tuple[str, str]] = []
        self.hook_results: dict[str, HookRun] = {}  # a hook's command, space-joined -> what it does
        self.hooks_run: list[tuple[str, str]] = []  # (container name, command space-joined), in order
        self._next = 0

    # -- scripting ---------------------------------------------------------------------------
    def script(self, image: str, script: Script) -> None:
        self.scripts[image] = script

    def fail(self, operation: str, error: EdgeError) -> None:
        """The next call of ``operation`` raises ``error``."""
        self.failures.setdefault(operation, []).append(error)

    def container_project(self, name: str) -> str | None:
        return next((c.stack for c in self.containers.values() if c.name == name), None)

    def add_container(self, stack: str, service: str, *, name: str | None = None, image: str = "hand:made",
                      managed: bool = False, status: str = "running") -> str:
        """A container someone else created (e.g. ``docker compose up``)."""
        cid = self._new_id()
        self.containers[cid] = FakeContainer(
            cid, name or f"{stack}-{service}-1", stack, service, image, "", "", "unless-stopped", Script(),
            status=status, started_at=self.clock.monotonic(), managed=managed,
        )
        return cid

    def _call(self, operation: str, target: str) -> None:
        self.calls.append((operation, target))
        if self.before is not None:
            self.before(operation, target)
        queued = self.failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _new_id(self) -> str:
        self._next += 1
        return hashlib.sha256(f"container-{self._next}".encode()).hexdigest()

    def _get(self, cid: str) -> FakeContainer:
        try:
            return self.containers[cid]
        except KeyError:
            raise EngineNotFoundError(f"no such container: {cid[:12]}") from None

    def _name_taken(self, name: str, other_than: str = "") -> bool:
        return any(c.name == name and c.id != other_than for c in self.containers.values())

    def _advance(self, c: FakeContainer) -> None:
        """Let the scripted behaviour happen up to now."""
        if c.status != "running":
            return
        s = c.script
        elapsed = self.clock.monotonic() - c.started_at
        if elapsed < s.after_s:
            return
        if s.run is Run.EXIT:
            c.status, c.exit_code = "exited", s.exit_code
        elif s.run is Run.OOM:
            c.status, c.exit_code, c.oom_killed = "exited", 137, True
        elif s.run is Run.RESTART:
            c.restarts += 1
            c.exit_code = s.exit_code
            c.started_at = self.clock.monotonic()

    def _health(self, c: FakeContainer) -> str | None:
        if c.status != "running":
            return None
        run = c.script.run
        if run in (Run.HEALTHY, Run.UNHEALTHY, Run.NEVER):
            ready = self.clock.monotonic() - c.started_at >= c.script.after_s and run is not Run.NEVER
            return ("healthy" if run is Run.HEALTHY else "unhealthy") if ready else "starting"
        return None

    # -- ContainerRuntime --------------------------------------------------------------------
    def observe(self) -> ObservedState:
        self._call("observe", "")
        out = []
        for c in self.containers.values():
            self._advance(c)
            out.append(ObservedContainer(
                id=c.id, name=c.name, stack=c.stack, service=c.service, number=c.number, status=c.status,
                health=self._health(c), restart_count=c.restarts,
                image=c.image if c.managed else None,
                config_hash=c.config_hash if c.managed else None,
                revision=c.revision if c.managed else None,
                managed=c.managed, kept=c.name.endswith((KEPT_SUFFIX, FAILED_SUFFIX)),
            ))
        projects = tuple(sorted((n, self.network_projects.get(n, "")) for n in self.networks))
        return ObservedState(tuple(out), tuple(sorted(self.networks)), tuple(sorted(self.volumes)), projects)

    def observe_containers(self) -> ObservedState:
        return ObservedState(self.observe().containers)

    def fingerprint(self, stacks: Collection[str]) -> str:
        self._call("fingerprint", "")
        rows = []
        for c in sorted((c for c in self.containers.values() if c.stack in stacks), key=lambda c: c.id):
            self._advance(c)
            rows.append(f"{c.id} {c.name} {c.status} {self._health(c)} {c.image} {c.config_hash} {c.revision}")
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()

    def platform(self) -> str:
        return "linux/amd64"

    def resolve_image(self, ref: str, pull_policy: str, platform: str | None = None) -> str:
        self._call("resolve_image", ref)
        if ref in self.missing:
            raise ImageNotFoundError(f"image {ref} not found")
        if "@" in ref:
            return ref
        return f"{ref}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"

    def pull_image(self, pinned: str, platform: str | None = None) -> bool:
        self._call("pull_image", pinned)
        if pinned in self.pulled:
            return False
        if self.free is not None:
            self.free -= self.image_size
        self.pulled.add(pinned)
        return True

    def image_info(self, ref: str) -> tuple[str, int] | None:
        return (f"id-of-{ref}", self.image_size) if ref in self.pulled else None

    def images_in_use(self) -> set[str]:
        return {f"id-of-{c.image}" for c in self.containers.values()}

    def remove_image(self, ref: str) -> bool:
        self._call("remove_image", ref)
        if ref not in self.pulled or ref in {c.image for c in self.containers.values()}:
            return False
        self.pulled.discard(ref)
        if self.free is not None:
            self.free += self.image_size
        return True

    def free_space(self) -> int | None:
        return self.free

    def ensure_network(self, stack: str, net: NetworkSpec) -> None:
        self._call("ensure_network", net.name)
        self.networks.add(net.name)
        self.network_projects.setdefault(net.name, stack)

    def ensure_volume(self, stack: str, vol: VolumeSpec) -> None:
        self._call("ensure_volume", vol.name)
        self.volumes.add(vol.name)

    def create_container(self, stack: StackSpec, spec: ServiceSpec, *, image: str, config_hash: str,
                         revision: str, name: str | None = None, number: int = 1) -> str:
        name = name or spec.container_name or f"{stack.name}-{spec.name}-{number}"
        self._call("create_container", name)
        if image not in self.pulled:
            raise EngineNotFoundError(f"image {image} is not present locally (pull it first)")
        if self._name_taken(name):
            raise EngineConflictError(f"creating container {name}: the name is already in use")
        cid = self._new_id()
        script = self.scripts.get(image.split("@", 1)[0], Script())
        self.containers[cid] = FakeContainer(
            cid, name, stack.name, spec.name, image, config_hash, revision, spec.restart, script, number=number,
            pre_stop=spec.pre_stop,
        )
        return cid

    def start_container(self, container_id: str) -> None:
        self._call("start_container", container_id)
        c = self._get(container_id)
        self._advance(c)
        if c.status != "running":
            c.status, c.started_at, c.exit_code, c.oom_killed = "running", self.clock.monotonic(), 0, False

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None:
        self._call("stop_container", container_id)
        c = self._get(container_id)
        if c.status == "running":
            c.status, c.exit_code = "exited", 0

    def run_hook(self, container_id: str, hook: ServiceHook, timeout_s: float) -> HookRun:
        self._call("run_hook", container_id)
        c = self._get(container_id)
        self._advance(c)
        if c.status != "running":
            raise EngineConflictError(f"running a hook in container {container_id[:12]}: it is not running")
        command = " ".join(hook.command)
        self.hooks_run.append((c.name, command))
        return self.hook_results.get(command, HookRun(0))

    def remove_container(self, container_id: str) -> None:
        self._call("remove_container", container_id)
        self.containers.pop(container_id, None)  # gone already is fine

    def remove_network(self, name: str) -> None:
        self._call("remove_network", name)
        self.networks.discard(name)
        self.network_projects.pop(name, None)

    def rename_container(self, container_id: str, new_name: str) -> None:
        self._call("rename_container", container_id)
        c = self._get(container_id)
        if self._name_taken(new_name, other_than=container_id):
            raise EngineConflictError(f"renaming {container_id[:12]}: {new_name} is already in use")
        c.name = new_name

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        self._call("set_restart_policy", container_id)
        self._get(container_id).restart_policy = policy

    def inspect_state(self, container_id: str) -> ContainerState:
        self._call("inspect_state", container_id)
        c = self._get(container_id)
        self._advance(c)
        health = self._health(c)
        return ContainerState(
            status=c.status,
            health=health,
            exit_code=c.exit_code,
            oom_killed=c.oom_killed,
            restart_count=c.restarts,
            running_for_s=self.clock.monotonic() - c.started_at if c.status == "running" else 0.0,
            health_log="probe failed" if health == "unhealthy" else "",
            name=c.name,
            restart_policy=c.restart_policy,
            pre_stop=c.pre_stop,
        )

    def event_mark(self) -> float:
        return self.clock.monotonic()

    def wait_for_change(self, container_ids: Collection[str], since: float, timeout_s: float) -> bool:
        """No event stream here: scripts change state as fake time passes, seen in poll steps."""
        self.clock.sleep(min(timeout_s, FAKE_EVENT_STEP_S))
        return False

    def logs(self, container_id: str, tail: int) -> list[str]:
        self._call("logs", container_id)
        c = self._get(container_id)
        self._advance(c)
        lines = [f"{c.service} started from {c.image}"]
        if c.status == "exited":
            lines.append(f"{c.service} exited with code {c.exit_code}")
        return lines[-tail:]

    # -- for assertions ----------------------------------------------------------------------
    def stack(self, stack: str) -> list[FakeContainer]:
        return sorted((c for c in self.containers.values() if c.stack == stack), key=lambda c: c.name)


# -- source ----------------------------------------------------------------------------------


class FakeSource:
    """A remote ref a test moves with ``point``; checkouts are only names (the loader is faked too)."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        self.fetched: str | None = None
        self.error: EdgeError | None = None  # raised by the next calls while set

    def point(self, revision: str) -> None:
        self.revision = revision

    def remote_revision(self) -> str:
        if self.error is not None:
            raise self.error
        return self.revision

    def checkout(self, applied_revision: str | None = None, revision: str | None = None) -> Checkout:
        if self.error is not None:
            raise self.error
        target = revision if revision is not None else self.revision
        changed = target != self.fetched
        self.fetched = target
        return Checkout(target, Path("/fake-checkout") / target, changed)


# -- store -----------------------------------------------------------------------------------


@dataclass
class _Good:
    revision: str
    specs_json: str
    images: dict[str, str]


@dataclass
class FakeStore:
    """The engine's slice of the state store, in memory; the journal kept as stored JSON text."""

    clock: FakeClock = field(default_factory=FakeClock)
    journal_rows: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # stack -> revision, phase, json
    applied_stacks: dict[str, AppliedStack] = field(default_factory=dict)
    good: dict[str, list[_Good]] = field(default_factory=dict)
    quarantine_rows: dict[str, tuple[str, str]] = field(default_factory=dict)
    stopped_rows: dict[str, str] = field(default_factory=dict)
    suspended_rows: dict[str, str] = field(default_factory=dict)
    kv: dict[str, str] = field(default_factory=dict)
    images: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    freed: int = 0
    syncs: list[SyncRecord] = field(default_factory=list)
    lock_row: dict[str, object] | None = None
    outcome_rows: dict[str, StackOutcome] = field(default_factory=dict)
    writes: int = 0  # outcome and applied writes, to show an idle poll writes nothing

    def _now(self) -> float:
        return self.clock.monotonic()

    # sync records
    def start_sync(self, started_at: float | None = None) -> int:
        self.syncs = [replace(r, finished_at=r.started_at, outcome=Outcome.ERROR, reason="interrupted")
                      if r.finished_at is None else r for r in self.syncs]
        at = self._now() if started_at is None else started_at
        self.syncs.append(SyncRecord(len(self.syncs) + 1, at, None, None, None, ""))
        return len(self.syncs)

    def close_interrupted(self) -> int:
        open_rows = sum(1 for r in self.syncs if r.finished_at is None)
        self.syncs = [replace(r, finished_at=r.started_at, outcome=Outcome.ERROR, reason="interrupted")
                      if r.finished_at is None else r for r in self.syncs]
        return open_rows

    def finish_sync(self, sync_id: int, *, revision: str | None, outcome: Outcome, reason: str,
                    actions: list[str], step: Step | None = None, evidence: list[Evidence] | None = None) -> None:
        rec = self.syncs[sync_id - 1]
        self.syncs[sync_id - 1] = replace(
            rec, finished_at=self._now(), revision=revision, outcome=outcome, reason=reason,
            actions=tuple(actions), duration_s=self._now() - rec.started_at, step=step,
            evidence=tuple(evidence or ()),
        )

    def history(self, limit: int = 50) -> list[SyncRecord]:
        return list(reversed(self.syncs))[:limit]

    # applied stacks
    def applied(self) -> dict[str, AppliedStack]:
        return dict(self.applied_stacks)

    def record_applied(self, stack: str, revision: str, specs_json: str, images: dict[str, str]) -> None:
        self.clock.advance(0.001)  # applied_at orders the revisions
        self.applied_stacks[stack] = AppliedStack(stack, revision, self._now(), specs_json)
        goods = [g for g in self.good.get(stack, []) if g.revision != revision]
        self.good[stack] = [_Good(revision, specs_json, dict(images)), *goods][:5]
        self.writes += 1

    def forget_stack(self, stack: str) -> None:
        self.applied_stacks.pop(stack, None)
        self.quarantine_rows.pop(stack, None)
        self.stopped_rows.pop(stack, None)
        self.outcome_rows.pop(stack, None)

    def record_stack_outcome(self, outcome: StackOutcome) -> None:
        self.outcome_rows[outcome.stack] = outcome
        self.writes += 1

    def stack_outcomes(self) -> dict[str, StackOutcome]:
        return dict(self.outcome_rows)

    def good_revisions(self, stack: str) -> list[tuple[str, str, dict[str, str]]]:
        return [(g.revision, g.specs_json, dict(g.images)) for g in self.good.get(stack, [])]

    def good_stacks(self) -> list[str]:
        return sorted(s for s, goods in self.good.items() if goods)

    # images the agent pulled
    def image_pulled(self, ref: str, image_id: str, size: int) -> None:
        self.clock.advance(0.001)
        self.images[ref] = (image_id, size, self._now())

    def pulled_images(self) -> dict[str, tuple[str, int, float]]:
        return dict(sorted(self.images.items(), key=lambda kv: (kv[1][2], kv[0])))

    def forget_image(self, ref: str, freed: int = 0) -> None:
        self.images.pop(ref, None)
        self.freed += freed

    # what holds a stack or the device back
    def quarantine(self, stack: str, revision: str, reason: str) -> None:
        self.quarantine_rows[stack] = (revision, reason)

    def quarantined(self) -> dict[str, tuple[str, str]]:
        return dict(self.quarantine_rows)

    def clear_quarantine(self, stack: str) -> bool:
        return self.quarantine_rows.pop(stack, None) is not None

    def stop_automation(self, stack: str, reason: str) -> None:
        self.stopped_rows[stack] = reason

    def stopped(self) -> dict[str, str]:
        return dict(self.stopped_rows)

    def suspended(self) -> dict[str, str]:
        return dict(self.suspended_rows)

    def lock(self) -> dict[str, object] | None:
        return dict(self.lock_row) if self.lock_row is not None else None

    # journal, in its stored form
    def journal(self) -> RawJournal:
        return {s: (r, p, dict(json.loads(d))) for s, (r, p, d) in self.journal_rows.items()}

    def journal_write(self, stack: str, revision: str, phase: str, data: dict[str, object]) -> None:
        self.journal_rows[stack] = (revision, phase, json.dumps(data, sort_keys=True))

    def journal_clear(self, stack: str) -> None:
        self.journal_rows.pop(stack, None)

    # small values
    def get(self, key: str) -> str | None:
        return self.kv.get(key)

    def put(self, key: str, value: str) -> None:
        self.kv[key] = value
