"""One reconcile pass, as named steps run in order (``STEPS``, docs/architecture.md).

FETCH -> LOAD -> SECURITY -> VERIFY -> PLAN -> HOLD -> STAGE -> SWITCH ->
GATE -> COMMIT, or ROLLBACK. The first five only read (they also serve the
``plan`` command); SWITCH, GATE, COMMIT and ROLLBACK run per stack inside
``engine.switch.StackSwitch.apply``. Each step either succeeds, ends the sync
early with a result (nothing to change, changes must wait) or raises one of
our errors, which says by its ``retry`` whether trying again can help. The
outcome of the sync, with the step where it stopped, is recorded on every
exit path, in the ``finally`` of ``sync``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitops_edge.core import image_ref
from gitops_edge.core.outcome import outcome_for
from gitops_edge.core.plan import make_plan
from gitops_edge.core.platform import parse_platform
from gitops_edge.core.serialize import stack_from_json, stack_to_json
from gitops_edge.core.windows import in_window, next_opening
from gitops_edge.engine import recovery
from gitops_edge.engine.image_policy import ImagePolicy
from gitops_edge.engine.switch import StackSwitch
from gitops_edge.errors import (
    ApplyError,
    DesiredStateError,
    EdgeError,
    ImagePlatformError,
    Location,
    RegistryError,
    RollbackFailed,
    StateStoreError,
    TrustError,
)
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.observed import ObservedState
from gitops_edge.model.plan import Plan, StackPlan
from gitops_edge.model.result import SyncResult
from gitops_edge.model.spec import DesiredState, ServiceSpec, StackSpec
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.ports.clock import Clock, SystemClock
from gitops_edge.ports.images import PlatformResolver
from gitops_edge.ports.runtime import ContainerRuntime
from gitops_edge.ports.source import GitSource
from gitops_edge.ports.store import EngineStore

log = logging.getLogger("gitops_edge.engine.reconcile")

Loader = Callable[[Path, str, str], DesiredState]


@dataclass(frozen=True)
class Prepared:
    """Everything a plan is made of, gathered once per sync."""

    revision: str
    desired: DesiredState
    observed: ObservedState
    pinned: Mapping[tuple[str, str], str]
    plan: Plan
    skipped: Mapping[str, str]  # stack -> why it is left alone this time


@dataclass
class _Pass:
    """The working state of one sync, filled in step by step."""

    dry: bool = False  # the `plan` command: run the read-only steps, record nothing
    step: Step = Step.FETCH  # the step running now (the one a failure is charged to)
    revision: str = ""
    root: Path = Path()
    desired: DesiredState = field(default_factory=lambda: DesiredState(""))
    skipped: dict[str, str] = field(default_factory=dict)
    pinned: dict[tuple[str, str], str] = field(default_factory=dict)
    observed: ObservedState = field(default_factory=ObservedState)
    plan: Plan = field(default_factory=lambda: Plan(""))
    result: SyncResult = field(default_factory=lambda: SyncResult(Outcome.UNCHANGED))

    def at(self, step: Step) -> None:
        self.step = step

    def prepared(self) -> Prepared:
        return Prepared(self.revision, self.desired, self.observed, self.pinned, self.plan, self.skipped)


class Reconciler:
    def __init__(
        self,
        config: AgentConfig,
        source: GitSource,
        runtime: ContainerRuntime,
        store: EngineStore,
        loader: Loader,
        image_policy: ImagePolicy | None = None,
        clock: Clock | None = None,
        after_sync: Callable[[], None] | None = None,
        platforms: PlatformResolver | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.runtime = runtime
        self.store = store
        self.loader = loader
        self.image_policy = image_policy
        self.platforms = platforms
        self._platforms: dict[str, str] = {}  # pinned image -> the platform it is pulled for
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.after_sync = after_sync  # housekeeping once a sync is recorded (unused revision trees)
        self.revision_seen: str | None = None  # the commit this sync checked out, once it has
        self.switch = StackSwitch(runtime, store, config.health, self.clock)

    # -- the sync ----------------------------------------------------------------------
    def sync(self) -> SyncResult:
        started = self.clock.monotonic()
        sync_id = self.store.start_sync()
        p = _Pass()
        result = SyncResult(Outcome.ERROR, reason="interrupted")
        try:
            recovery.recover(self.store, self.runtime, self.switch, p.at)
            result = self._run(p)
        except EdgeError as exc:
            result = SyncResult(outcome_for(exc), revision=self.revision_seen, reason=str(exc), error=exc)
        finally:
            if result.step is None:
                result.step = p.step
            try:
                self.store.finish_sync(
                    sync_id,
                    revision=result.revision,
                    outcome=result.outcome,
                    reason=result.reason,
                    actions=result.actions,
                    step=result.step,
                )
            except StateStoreError as exc:  # recording must never hide the real outcome
                log.error("could not record the sync: %s", exc)
            log.info(
                "sync %s at %s in %.2fs: %s%s",
                result.outcome.value,
                result.step.value,
                self.clock.monotonic() - started,
                (result.revision or "")[:12],
                f" ({result.reason})" if result.reason else "",
            )
        if self.after_sync is not None:
            try:
                self.after_sync()
            except (EdgeError, OSError) as exc:  # housekeeping: never the sync's outcome
                log.warning("after the sync: %s", exc)
        return result

    def _run(self, p: _Pass, last: Step | None = None) -> SyncResult:
        """Run ``STEPS`` in order until one ends the sync (or ``last`` has run)."""
        out: SyncResult | None = None
        for step, run in STEPS:
            p.at(step)
            out = run(self, p)
            if out is not None or step is last:
                break
        result = out if out is not None else p.result
        result.step = p.step
        return result

    def prepare(self) -> Prepared:
        """The read-only steps, FETCH to PLAN: what a sync would do now (the ``plan`` command)."""
        p = _Pass(dry=True)
        self._run(p, last=Step.PLAN)
        return p.prepared()

    def recover(self) -> list[str]:
        """Finish or undo switches a crash interrupted (``engine.recovery``)."""
        return recovery.recover(self.store, self.runtime, self.switch, lambda _step: None)

    # -- FETCH, LOAD, SECURITY, VERIFY, PLAN: read only ---------------------------------
    def _fetch(self, p: _Pass) -> SyncResult | None:
        checkout = self.source.checkout(applied_revision=self._applied_revision())
        self.revision_seen = p.revision = checkout.revision
        p.root = checkout.root
        return None

    def _load(self, p: _Pass) -> SyncResult | None:
        p.desired = self.loader(p.root, self.config.source.path, p.revision)
        p.revision = p.desired.revision
        return None

    def _security(self, p: _Pass) -> SyncResult | None:
        """The device security policy: a compromised repo must not take over the device."""
        from gitops_edge.core.security import check_stack

        problems = [
            f"{st.compose_file}: {prob}"
            for st in p.desired.stacks
            for prob in check_stack(st, self.config.security, str(p.root))
        ]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise TrustError(problems[0] + more)
        return None

    def _verify(self, p: _Pass) -> SyncResult | None:
        """Pin (and with a trust policy, verify) every image of the stacks not held back."""
        p.skipped = self._skipped(p.revision)
        p.pinned = self._pin(p.desired, p.skipped)
        return None

    def _plan(self, p: _Pass) -> SyncResult | None:
        p.observed = self.runtime.observe()
        previous = {name: stack_from_json(a.specs_json) for name, a in self.store.applied().items()}
        p.plan = make_plan(
            p.desired, p.observed, p.pinned, previous, managed_stacks=previous.keys(), skip=p.skipped.keys()
        )
        if p.dry:
            return None
        for stack, why in p.skipped.items():
            log.info("skipping %s: %s", stack, why)
        p.result = SyncResult(Outcome.UNCHANGED, revision=p.revision, plan=p.plan)
        if p.skipped:
            p.result.reason = "; ".join(f"{s}: {w}" for s, w in sorted(p.skipped.items()))
        if not p.plan.is_noop:
            return None
        self._record_revisions(p, p.plan.stacks)
        if p.skipped and not p.plan.stacks:  # every stack is held back
            p.result.outcome = Outcome.SKIPPED
        return p.result

    def _applied_revision(self) -> str | None:
        """The newest revision applied to any stack: the ref may only move forward from it."""
        applied = sorted(self.store.applied().values(), key=lambda a: a.applied_at)
        return applied[-1].revision if applied else None

    def _skipped(self, revision: str) -> dict[str, str]:
        out = {s: f"suspended: {why}" for s, why in self.store.suspended().items()}
        out.update({s: f"automation stopped: {why}" for s, why in self.store.stopped().items()})
        for stack, (rev, why) in self.store.quarantined().items():
            if rev == revision and stack not in out:
                out[stack] = f"commit {rev[:12]} is quarantined: {why}"
        return out

    def _pin(self, desired: DesiredState, skipped: Mapping[str, str]) -> dict[tuple[str, str], str]:
        """Every service's image pinned to a digest, verified, and offering the service's platform.

        With a trust policy the signature is checked on the digest the reference
        names (a multi-arch tag: its index, as cosign signs and sigstore's
        policy-controller verifies by default). The container is then pinned
        to the device's platform manifest in that index: content-addressed by
        the verified index, and one engine reference per platform (the engine
        keeps one image per ``repo@digest``; two platforms of one index digest
        would collide: "Cannot overwrite digest").
        """
        cache: dict[tuple[str, str, str], str] = {}
        pinned: dict[tuple[str, str], str] = {}
        for st in desired.stacks:
            if st.name in skipped:
                continue
            for svc in st.services:
                try:
                    platform = self._platform_for(svc)
                except ValueError as exc:
                    where = Location(st.compose_file, key=f"services.{svc.name}.platform")
                    raise DesiredStateError(str(exc), where) from None
                key = (svc.image, svc.pull_policy, platform)
                if key not in cache:
                    try:
                        ref = self.image_policy.pinned(svc.image) if self.image_policy is not None else svc.image
                        if image_ref.is_pinned(ref):
                            ref = self._platform_pin(ref, platform)
                        resolved = self.runtime.resolve_image(ref, svc.pull_policy, platform)
                        cache[key] = resolved if resolved == ref else self._platform_pin(resolved, platform)
                    except TrustError as exc:
                        raise TrustError(f"{st.compose_file}: services.{svc.name}: {exc.message}",
                                         retry=exc.retry) from None  # an unset clock is retried, not parked
                    except ImagePlatformError as exc:
                        where = Location(st.compose_file, key=f"services.{svc.name}.image")
                        raise ImagePlatformError(exc.message, where) from None
                    self._platforms[cache[key]] = platform
                pinned[(st.name, svc.name)] = cache[key]
        return pinned

    def _platform_pin(self, pinned: str, platform: str) -> str:
        """``repo@<index digest>`` -> ``repo@<platform manifest digest>`` (a manifest maps to itself).

        Remembered in the state store: digests never change, so a poll asks the
        registry only for a digest it has not seen (and writes nothing otherwise).
        """
        if self.platforms is None or "@sha256:" not in pinned:
            return pinned  # a local image id, or no registry to ask
        repo, digest = pinned.rsplit("@", 1)
        key = f"platform:{repo}@{digest}:{platform}"
        child = self.store.get(key)
        if child is None:
            try:
                child = self.platforms.platform_manifest(repo, digest, platform)
            except RegistryError as exc:
                # The engine may reach registries the agent cannot (mirrors, its own proxy): it can
                # still pull the platform from the index, only two platforms of it cannot coexist.
                log.warning("cannot list the platforms of %s (%s); pinning the digest as named", pinned, exc)
                return pinned
            self.store.put(key, child)
        return f"{repo}@{child}"

    def _platform_for(self, svc: ServiceSpec) -> str:
        """The platform a service's image is chosen for: its ``platform:``, else the device's
        ``device.platform``, else the engine's own (as ``docker pull`` chooses)."""
        if svc.platform:
            return str(parse_platform(svc.platform))
        if self.config.device.platform:
            return self.config.device.platform
        return self.runtime.platform()

    # -- HOLD, STAGE -----------------------------------------------------------------------
    def _hold(self, p: _Pass) -> SyncResult | None:
        held = self._held()
        if held is None:
            return None
        log.info("changes wait: %s", held)
        p.result.outcome, p.result.reason = Outcome.SKIPPED, held
        return p.result

    def _held(self) -> str | None:
        """Why changes must wait now (a technician's lock, outside the update window), or None."""
        lock = self.store.lock()
        if lock is not None:
            return f"device locked by {lock.get('who')}: {lock.get('reason')}"
        windows = self.config.update_windows
        now = self.clock.now()
        if not in_window(now, windows):
            nxt = next_opening(now, windows)
            return "outside the update window" + (f"; next opens {nxt:%a %H:%M}" if nxt else "")
        return None

    def _stage(self, p: _Pass) -> SyncResult | None:
        self.stage(p.plan.stacks)
        return None

    def stage(self, stack_plans: Iterable[StackPlan]) -> None:
        """Pull every image and create networks and volumes before touching a container."""
        stack_plans = list(stack_plans)
        for image in sorted({a.image for sp in stack_plans for a in sp.actions if a.image}):
            self.runtime.pull_image(image, self._platforms.get(image))
        for sp in stack_plans:
            for net in sp.networks:
                self.runtime.ensure_network(sp.stack, net)
            for vol in sp.volumes:
                self.runtime.ensure_volume(sp.stack, vol)

    # -- SWITCH, GATE, COMMIT | ROLLBACK, per stack ------------------------------------------
    def _switch(self, p: _Pass) -> SyncResult | None:
        """Each changed stack in turn; a stack that fails is rolled back and held, the others go on."""
        result = p.result
        failures: list[tuple[EdgeError, Step]] = []
        for sp in p.plan.stacks:
            if sp.is_noop:
                self._record_revisions(p, [sp])
                continue
            try:
                result.actions += self._apply_stack(p, sp)
            except RollbackFailed as exc:
                self.store.stop_automation(sp.stack, str(exc))
                failures.append((exc, p.step))
            except ApplyError as exc:
                self.store.quarantine(sp.stack, p.revision, exc.message.removeprefix(f"{sp.stack}: "))
                failures.append((exc, p.step))
        if failures:
            result.outcome = Outcome.ROLLED_BACK
            result.error, p.step = failures[0]
            result.reason = "; ".join(str(exc) for exc, _ in failures)
        else:
            result.outcome = Outcome.APPLIED
        return result

    def _apply_stack(self, p: _Pass, sp: StackPlan) -> list[str]:
        if sp.remove_stack:
            return self._remove_stack(p, sp)
        stack = p.desired.stack(sp.stack)
        assert stack is not None
        done = self.switch.apply(sp, stack, p.revision, p.at)
        self._record_applied(p, stack)
        return done

    def _remove_stack(self, p: _Pass, sp: StackPlan) -> list[str]:
        """A stack that left Git: its containers and networks go (not journaled: nothing to keep)."""
        p.at(Step.SWITCH)
        done = []
        for a in sp.actions:
            for cid in a.container_ids:
                self.runtime.stop_container(cid)
                self.runtime.remove_container(cid)
            done.append(a.describe())
        for name in {n for n in p.observed.networks if n.startswith(f"{sp.stack}_")}:
            self.runtime.remove_network(name)
        p.at(Step.COMMIT)
        self.store.forget_stack(sp.stack)
        return done

    def _record_applied(self, p: _Pass, stack: StackSpec) -> None:
        images = {svc.name: p.pinned[(stack.name, svc.name)] for svc in stack.services}
        self.store.record_applied(stack.name, p.revision, stack_to_json(stack), images)

    def _record_revisions(self, p: _Pass, plans: Iterable[StackPlan]) -> None:
        """A no-op stack still moved to the new revision (e.g. only another stack changed)."""
        applied = self.store.applied()
        for sp in plans:
            if sp.remove_stack or sp.stack in p.skipped:
                continue
            stack = p.desired.stack(sp.stack)
            if stack is not None and (sp.stack not in applied or applied[sp.stack].revision != p.revision):
                self._record_applied(p, stack)


StepRun = Callable[[Reconciler, _Pass], SyncResult | None]

STEPS: tuple[tuple[Step, StepRun], ...] = (
    (Step.FETCH, Reconciler._fetch),
    (Step.LOAD, Reconciler._load),
    (Step.SECURITY, Reconciler._security),
    (Step.VERIFY, Reconciler._verify),
    (Step.PLAN, Reconciler._plan),
    (Step.HOLD, Reconciler._hold),
    (Step.STAGE, Reconciler._stage),
    (Step.SWITCH, Reconciler._switch),  # and GATE, COMMIT | ROLLBACK per stack (engine.switch)
)
"""The sync, in order. A step returns None to go on, a result to end the sync there,
or raises (``EdgeError.retry`` says whether a later sync can do better)."""
