"""One reconcile pass, as named steps run in order (``STEPS``, docs/architecture.md).

FETCH -> LOAD -> SECURITY -> VERIFY -> PLAN -> HOLD -> STAGE -> SWITCH ->
GATE -> COMMIT, or ROLLBACK. The first five only read (they also serve the
``plan`` command); SWITCH, GATE, COMMIT and ROLLBACK run per stack inside
``engine.switch.StackSwitch.apply``. Each step either succeeds, ends the sync
early with a result (nothing to change, changes must wait) or raises one of
our errors, which says by its ``retry`` whether trying again can help. The
outcome of the sync, with the step where it stopped, is recorded on every
exit path but one, in the ``finally`` of ``sync``: a sync that changed nothing
writes nothing (``engine.idle``; the daemon counts those in memory). The
history row of a sync that changes something is started before STAGE, so a
crash during an update still leaves its mark.

A reconciler kept across polls (the daemon's) remembers the last no-op sync
(``engine.idle.IdleMemo``): while the commit, the managed containers and the
stacks' held state are as they were, FETCH ends the sync after one ls-remote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitops_edge.core import image_ref
from gitops_edge.core.compose import StackErrors
from gitops_edge.core.outcome import outcome_for, severity
from gitops_edge.core.plan import make_plan
from gitops_edge.core.platform import parse_platform
from gitops_edge.core.serialize import stack_from_json, stack_to_json
from gitops_edge.core.windows import in_window, next_opening
from gitops_edge.engine import hooks, recovery, retention
from gitops_edge.engine.idle import SAVED_KEY, IdleMemo, SavedMemo, held_digest, save_memo
from gitops_edge.engine.image_policy import ImagePolicy
from gitops_edge.engine.security_gate import KeyLines
from gitops_edge.engine.switch import StackSwitch
from gitops_edge.errors import (
    ApplyError,
    DesiredStateError,
    EdgeError,
    EngineUnavailableError,
    ImagePlatformError,
    Location,
    RegistryError,
    RollbackFailed,
    StateStoreError,
    TrustError,
)
from gitops_edge.model.condition import Reason, StackOutcome
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.evidence import Evidence
from gitops_edge.model.observed import ObservedState
from gitops_edge.model.plan import Plan, StackPlan
from gitops_edge.model.result import SyncResult
from gitops_edge.model.spec import DesiredState, ServiceSpec, StackSpec
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.ports.clock import Clock, SystemClock
from gitops_edge.ports.images import ImageSizes, PlatformResolver
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


@dataclass(frozen=True)
class _Problem:
    """One stack's failure in this sync; the other stacks go on."""

    error: EdgeError
    step: Step
    reason: Reason
    evidence: tuple[Evidence, ...] = ()


def _reason_for(exc: EdgeError) -> Reason:
    if isinstance(exc, TrustError):
        return Reason.REFUSED
    if isinstance(exc, RollbackFailed):
        return Reason.AUTOMATION_STOPPED
    if isinstance(exc, ApplyError):
        return Reason.ROLLED_BACK
    return Reason.UNREACHABLE if exc.retryable else Reason.INVALID


_CHANGING = frozenset({Step.STAGE, Step.SWITCH, Step.GATE, Step.COMMIT, Step.ROLLBACK})
_PER_STACK = frozenset({Step.SWITCH, Step.GATE, Step.COMMIT, Step.ROLLBACK})


class _Beside:
    """One call run on its own thread, beside the caller's own wait (the idle poll lists the
    containers while ``ls-remote`` runs: the two round trips overlap instead of adding up)."""

    def __init__(self, call: Callable[[], str]) -> None:
        self._call = call
        self._value = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="idle-listing", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller, raised there
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


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
    problems: dict[str, _Problem] = field(default_factory=dict)  # stack -> why it failed this sync
    converged: dict[str, Outcome] = field(default_factory=dict)  # stack -> applied | unchanged, this sync
    loaded: bool = False  # LOAD ran: the stacks this revision holds are known
    clock: Clock | None = None  # for the step lines' durations
    stack: str | None = None  # the stack being switched, for the step lines
    began: float | None = None  # when the current (sync-wide) step began
    told: set[tuple[str, Step]] = field(default_factory=set)  # per-stack steps already announced
    idle: bool = False  # ended by the idle short-circuit at FETCH
    remembered: bool = False  # a no-op sync that armed the short-circuit
    sync_id: int | None = None  # the history row, once the sync is about to change something
    started_at: float = 0.0  # wall clock

    def at(self, step: Step) -> None:
        """Enter ``step``: a line as a sync-wide step ends and as one starts (INFO for the steps
        that change something, DEBUG for the read-only ones), one per stack for the per-stack steps."""
        now = self.clock.monotonic() if self.clock is not None else 0.0
        if self.began is not None and step is not self.step:
            self._line(self.step, f"{self.step.value} done in {now - self.began:.2f}s")
            self.began = None
        if step in _PER_STACK:  # entered again per dependency wave: one line per stack and step
            if self.stack is not None and (self.stack, step) not in self.told:
                self.told.add((self.stack, step))
                self._line(step, f"{step.value} {self.stack}")
        elif self.began is None or step is not self.step:
            self._line(step, step.value)
            self.began = now
        self.step = step

    def finish(self) -> None:
        """The last step's end line."""
        if self.began is not None and self.clock is not None:
            self._line(self.step, f"{self.step.value} done in {self.clock.monotonic() - self.began:.2f}s")
            self.began = None

    def _line(self, step: Step, text: str) -> None:
        if self.dry:
            return
        level = logging.INFO if step in _CHANGING else logging.DEBUG  # an idle poll stays quiet
        log.log(level, "%s", text, extra={"step": step.value, "revision": self.revision or None,
                                         "stack": self.stack if step in _PER_STACK else None})

    def prepared(self) -> Prepared:
        held = {**self.skipped, **{s: str(pr.error) for s, pr in self.problems.items()}}
        return Prepared(self.revision, self.desired, self.observed, self.pinned, self.plan, held)

    def held(self) -> set[str]:
        """Stacks this sync leaves alone: held back by the device, or failed in an earlier step."""
        return set(self.skipped) | set(self.problems)

    def fail(self, stack: str, exc: EdgeError, reason: Reason | None = None,
             evidence: tuple[Evidence, ...] = ()) -> None:
        """Record one stack's failure and log it: the one line that gives its reason."""
        problem = _Problem(exc, self.step, reason or _reason_for(exc), evidence)
        self.problems[stack] = problem
        if self.dry:
            return
        level = logging.ERROR if isinstance(exc, RollbackFailed) else logging.WARNING
        text = str(exc).removeprefix(f"{stack}: ")
        log.log(level, "%s: %s at %s: %s", stack, problem.reason.value, self.step.value, text,
                extra={"stack": stack, "revision": self.revision, "step": self.step.value,
                       "outcome": outcome_for(exc).value})


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
        key_lines: KeyLines | None = None,
        after_sync: Callable[[], None] | None = None,
        platforms: PlatformResolver | None = None,
        sizes: ImageSizes | None = None,
        device_key: Callable[[], str] | None = None,
        refresh_saved_memo: bool = True,
    ) -> None:
        self.config = config
        self.source = source
        self.runtime = runtime
        self.store = store
        self.loader = loader
        self.image_policy = image_policy
        self.platforms = platforms
        self._platforms: dict[str, str] = {}  # pinned image -> the platform it is pulled for
        self.sizes = sizes  # layer sizes from the registry, for the free-space check before STAGE
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.key_lines = key_lines  # locates security refusals as file:line (None: file and key only)
        self.after_sync = after_sync  # housekeeping once a sync is recorded (unused revision trees)
        self.revision_seen: str | None = None  # the commit this sync checked out, once it has
        self.switch = StackSwitch(runtime, store, config.health, self.clock)
        self.idle = IdleMemo(full_check_s=config.retention.full_check_s)
        self.last_idle = False  # the last sync ended at the idle short-circuit
        # set: the memo is also kept in the store for the next process (``engine.idle.SavedMemo``);
        # refresh: rewrite it when only its age changed (a one-shot process; the daemon writes
        # only when its basis changed, so an idle daemon writes nothing)
        self.device_key = device_key
        self.refresh_saved_memo = refresh_saved_memo
        self._closed_interrupted = False  # rows a dead process left "running" are closed once

    # -- the sync ----------------------------------------------------------------------
    def sync(self) -> SyncResult:
        started = self.clock.monotonic()
        p = _Pass(clock=self.clock, started_at=self.clock.now().timestamp())
        result = SyncResult(Outcome.ERROR, reason="interrupted")
        try:
            self.switch.settle()  # the last commit's replaced containers, retired in the background
            if not self._closed_interrupted:  # a process that died before its first journal write
                if self.store.close_interrupted():
                    log.warning("history: a sync cut short by the agent stopping is marked interrupted")
                self._closed_interrupted = True
            if self.store.journal():  # a crash: its history row (if any) is marked interrupted, this one kept
                self.idle.forget()
                p.sync_id = self.store.start_sync(p.started_at)
                recovery.recover(self.store, self.runtime, self.switch, p.at)
            result = self._run(p)
        except EdgeError as exc:
            result = SyncResult(outcome_for(exc), revision=self.revision_seen, reason=str(exc), error=exc)
        finally:
            p.finish()
            if result.step is None:
                result.step = p.step
            _fold(p, result)
            result.stacks = {**p.converged, **{s: outcome_for(pr.error) for s, pr in p.problems.items()}}
            self.last_idle = p.idle
            if result.outcome is Outcome.UNCHANGED:
                self.idle.count_unchanged(self.clock.now().timestamp())
            if not (p.idle or p.remembered):
                self.idle.forget()
                if self.device_key is not None and not p.dry:
                    self._drop_saved_memo()
            try:
                self._record_outcomes(p)
                self._record_sync(p, result)
            except StateStoreError as exc:  # recording must never hide the real outcome
                log.error("could not record the sync: %s", exc)
            # each stack's problem was logged when found; an error that ended the sync is logged here
            told = result.error is None or any(result.error is pr.error for pr in p.problems.values())
            log.log(
                logging.DEBUG if p.idle else logging.INFO if told else logging.WARNING,
                "sync %s at %s in %.2fs: %s%s",
                result.outcome.value,
                result.step.value,
                self.clock.monotonic() - started,
                (result.revision or "")[:12],
                f" ({result.reason})" if result.reason and not told else
                f" ({len(p.problems)} stack(s) failed, above)" if p.problems else
                f" ({result.reason})" if result.reason else "",
                extra={"revision": result.revision, "step": result.step.value, "outcome": result.outcome.value,
                       "summary": told},  # the CLI drops it beside its outcome line unless it is the error's one
            )
        if self.after_sync is not None and not p.idle:  # an idle poll left everything as it was
            try:
                self.after_sync()
            except (EdgeError, OSError) as exc:  # housekeeping: never the sync's outcome
                log.warning("after the sync: %s", exc)
        return result

    def _record_sync(self, p: _Pass, result: SyncResult) -> None:
        """History keeps what changed, failed or was refused; an unchanged sync is not a row."""
        if p.sync_id is None and (result.outcome is Outcome.UNCHANGED or p.dry or p.idle):
            return  # (an idle poll repeats the answer of the full sync that armed it)
        if p.sync_id is None:
            p.sync_id = self.store.start_sync(p.started_at)
        self.store.finish_sync(
            p.sync_id,
            revision=result.revision,
            outcome=result.outcome,
            reason=result.reason,
            actions=result.actions,
            step=result.step,
            evidence=result.evidence,
        )

    def _record_outcomes(self, p: _Pass) -> None:
        """Each stack this sync decided something about; nothing when that is what is stored already
        (an idle poll decided nothing: the full sync that armed it recorded its outcomes)."""
        if p.dry or p.idle or not p.revision:
            return
        now = self.clock.now().timestamp()
        stored = self.store.stack_outcomes()
        fresh = [
            StackOutcome(stack, outcome_for(pr.error), pr.reason, pr.error.message.removeprefix(f"{stack}: ")
                         if isinstance(pr.error, ApplyError) else str(pr.error),
                         p.revision, pr.step, now, pr.evidence[0] if pr.evidence else None)
            for stack, pr in p.problems.items()
        ]
        for stack, outcome in p.converged.items():
            last = stored.get(stack)
            if last is not None and last.reason is Reason.READY and last.revision == p.revision:
                continue  # an idle poll writes nothing
            step = Step.COMMIT if outcome is Outcome.APPLIED else Step.PLAN
            fresh.append(StackOutcome(stack, outcome, Reason.READY, "", p.revision, step, now))
        for o in fresh:
            if not o.same_as(stored.get(o.stack)):
                self.store.record_stack_outcome(o)
        if p.loaded:  # a stack that left Git before it was ever applied leaves no row either
            present = {st.name for st in p.desired.stacks} | set(p.problems) | set(self.store.applied())
            for stack in set(stored) - present:
                self.store.forget_stack(stack)

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
        self.switch.settle()
        return recovery.recover(self.store, self.runtime, self.switch, lambda _step: None)

    # -- FETCH, LOAD, SECURITY, VERIFY, PLAN: read only ---------------------------------
    def _fetch(self, p: _Pass) -> SyncResult | None:
        asked: str | None = None
        if not p.dry and self.idle.armed(self.clock.monotonic()):
            listing = _Beside(lambda: self.runtime.fingerprint(self.idle.stacks))  # the engine answers while git runs
            revision = asked = self.source.remote_revision()  # one ls-remote; its failure is this sync's
            held = held_digest(self.store)  # (the store stays on this thread) while the list may still run
            if self.idle.matches(revision, listing.result(), held):
                self.revision_seen = p.revision = revision
                p.idle = True
                p.result = SyncResult(self.idle.outcome, revision=revision, reason=self.idle.reason)
                return p.result
            self.idle.forget()  # something moved: the full sync, now (the remote's answer stands)
        checkout = self.source.checkout(applied_revision=self._applied_revision(), revision=asked)
        self.revision_seen = p.revision = checkout.revision
        p.root = checkout.root
        return None

    def _load(self, p: _Pass) -> SyncResult | None:
        """Every stack of the checkout; an invalid stack is recorded and the valid ones go on."""
        try:
            p.desired = self.loader(p.root, self.config.source.path, p.revision)
        except StackErrors as exc:
            if exc.partial is None:  # a problem outside any one stack (fleet.yaml, the tree itself)
                raise
            p.desired = exc.partial
            for stack, errs in sorted(exc.by_stack.items()):
                err = errs[0] if len(errs) == 1 else DesiredStateError("; ".join(str(e) for e in errs))
                p.fail(stack, err, Reason.INVALID)
        p.revision = p.desired.revision
        p.loaded = True
        return None

    def _security(self, p: _Pass) -> SyncResult | None:
        """The device security policy: a compromised repo must not take over the device (per stack)."""
        from gitops_edge.engine.security_gate import policy_refusals

        for stack, refusal in policy_refusals(p.desired, self.config.security, p.root, self.key_lines).items():
            p.fail(stack, refusal)
        return None

    def _verify(self, p: _Pass) -> SyncResult | None:
        """Pin (and with a trust policy, verify) every image of the stacks not held back."""
        p.skipped = self._skipped(p.revision)
        p.pinned = self._pin(p)
        return None

    def _check_ownership(self, p: _Pass, managed: Iterable[str]) -> None:
        """SECURITY's half that needs the engine's view, run where PLAN observes it anyway
        (no extra engine calls): no hand-made project taken over, no foreign container name."""
        from gitops_edge.engine.security_gate import ownership_refusals

        refusals = ownership_refusals(p.desired, p.observed, set(managed), self.config.security, p.root,
                                      self.key_lines, name_owner=lambda name: self.runtime.container_project(name))
        planning, p.step = p.step, Step.SECURITY
        for stack, refusal in refusals.items():
            if stack not in p.held():
                p.fail(stack, refusal)
        p.step = planning

    def _plan(self, p: _Pass) -> SyncResult | None:
        p.observed = self.runtime.observe()
        previous = {name: stack_from_json(a.specs_json) for name, a in self.store.applied().items()}
        self._check_ownership(p, previous.keys())
        p.plan = make_plan(
            p.desired, p.observed, p.pinned, previous, managed_stacks=previous.keys(), skip=p.held()
        )
        if p.dry:
            return None
        for stack, why in p.skipped.items():  # the sync's reason says it once
            log.debug("skipping %s: %s", stack, why)
        p.result = SyncResult(Outcome.UNCHANGED, revision=p.revision, plan=p.plan)
        if p.skipped:
            p.result.reason = "; ".join(f"{s}: {w}" for s, w in sorted(p.skipped.items()))
        if not p.plan.is_noop:
            self.idle.forget()
            return None
        self._record_revisions(p, p.plan.stacks)
        if p.skipped and not p.plan.stacks:  # every stack is held back
            p.result.outcome = Outcome.SKIPPED
        self._remember_idle(p)
        return p.result

    def _remember_idle(self, p: _Pass) -> None:
        """Arm the idle short-circuit, unless a stack failed this sync (it is tried again on the
        next poll) or a service asks its registry on every poll."""
        if p.problems or any(svc.pull_policy == "always" for st in p.desired.stacks for svc in st.services):
            return
        stacks = frozenset(st.name for st in p.desired.stacks) | frozenset(self.store.applied())
        self.idle.stacks = stacks
        self.idle.remember(p.revision, self.runtime.fingerprint(stacks), held_digest(self.store),
                           self.clock.monotonic(), p.result.outcome, p.result.reason)
        p.remembered = True
        if self.device_key is not None:
            memo = self.idle
            saved = SavedMemo(self.device_key(), p.revision, memo.engine or "", memo.held or "", tuple(sorted(stacks)),
                              memo.outcome.value, memo.reason, self.clock.now().timestamp())
            try:
                save_memo(self.store, saved, refresh=self.refresh_saved_memo, full_check_s=memo.full_check_s)
            except StateStoreError as exc:  # the next process then runs a full sync: never this one's outcome
                log.warning("could not keep the idle memo: %s", exc)

    def _drop_saved_memo(self) -> None:
        """A sync that changed or failed something: the stored memo no longer tells the next process
        what the device's last answer is (its stacks' outcomes moved). Written only when one is kept."""
        try:
            if self.store.get(SAVED_KEY):
                self.store.put(SAVED_KEY, "")
        except StateStoreError as exc:
            log.warning("could not drop the idle memo: %s", exc)

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

    def _pin(self, p: _Pass) -> dict[tuple[str, str], str]:
        """Each stack's images pinned to a digest, verified, and offering the service's platform;
        a stack with an image refused, missing or without its platform is recorded and left alone.

        With a trust policy the signature is checked on the digest the reference
        names (a multi-arch tag: its index, as cosign signs and sigstore's
        policy-controller verifies by default). The container is then pinned
        to the device's platform manifest in that index: content-addressed by
        the verified index, and one engine reference per platform (the engine
        keeps one image per ``repo@digest``; two platforms of one index digest
        would collide: "Cannot overwrite digest").
        """
        cache: dict[tuple[str, str, str], str | EdgeError] = {}
        pinned: dict[tuple[str, str], str] = {}
        for st in p.desired.stacks:
            if st.name in p.held():
                continue
            mine: dict[tuple[str, str], str] = {}
            for svc in st.services:
                try:
                    platform = self._platform_for(svc)
                except ValueError as exc:
                    where = Location(st.compose_file, key=f"services.{svc.name}.platform")
                    p.fail(st.name, DesiredStateError(str(exc), where), Reason.INVALID)
                    break
                key = (svc.image, svc.pull_policy, platform)
                if key not in cache:
                    try:
                        ref = self.image_policy.pinned(svc.image) if self.image_policy is not None else svc.image
                        if image_ref.is_pinned(ref):
                            ref = self._platform_pin(ref, platform)
                        resolved = self.runtime.resolve_image(ref, svc.pull_policy, platform)
                        chosen = resolved if resolved == ref else self._platform_pin(resolved, platform)
                        cache[key] = chosen
                        self._platforms[chosen] = platform
                    except EdgeError as exc:
                        cache[key] = exc
                found = cache[key]
                if isinstance(found, EngineUnavailableError):
                    raise found  # not this stack's problem: the whole sync waits for the engine
                if isinstance(found, EdgeError):
                    err = found
                    if isinstance(found, TrustError):
                        err = TrustError(f"{st.compose_file}: services.{svc.name}: {found.message}",
                                         retry=found.retry)  # an unset clock is retried, not parked
                    elif isinstance(found, ImagePlatformError):
                        err = ImagePlatformError(found.message,
                                                 Location(st.compose_file, key=f"services.{svc.name}.image"))
                    p.fail(st.name, err)
                    break
                mine[(st.name, svc.name)] = found
            else:
                pinned.update(mine)
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
        if not p.dry and p.sync_id is None:  # about to change the device: its history row first
            p.sync_id = self.store.start_sync(p.started_at)
        self.stage(p.plan.stacks)
        return None

    def stage(self, stack_plans: Iterable[StackPlan]) -> None:
        """Pull every image and create networks and volumes before touching a container."""
        stack_plans = list(stack_plans)
        images = sorted({a.image for sp in stack_plans for a in sp.actions if a.image})
        missing = [image for image in images if self.runtime.image_info(image) is None]
        retention.ensure_space(self.store, self.runtime, missing, self.config.retention.min_free_bytes, self.sizes,
                               self._platforms)
        for image in images:
            if self.runtime.pull_image(image, self._platforms.get(image)):
                retention.record_pull(self.store, self.runtime, image)
        for sp in stack_plans:
            for net in sp.networks:
                self.runtime.ensure_network(sp.stack, net)
            for vol in sp.volumes:
                self.runtime.ensure_volume(sp.stack, vol)

    # -- SWITCH, GATE, COMMIT | ROLLBACK, per stack ------------------------------------------
    def _switch(self, p: _Pass) -> SyncResult | None:
        """Each changed stack in turn; a stack that fails is rolled back and held, the others go on."""
        result = p.result
        for sp in p.plan.stacks:
            if sp.is_noop:
                self._record_revisions(p, [sp])
                continue
            p.stack = sp.stack
            try:
                result.actions += self._apply_stack(p, sp)
                if not sp.remove_stack:
                    p.converged[sp.stack] = Outcome.APPLIED
            except RollbackFailed as exc:
                self.store.stop_automation(sp.stack, str(exc))
                result.actions += [f"{a} (rollback failed)" for a in self.switch.done]
                p.fail(sp.stack, exc, evidence=tuple(self.switch.evidence))
            except ApplyError as exc:
                self.store.quarantine(sp.stack, p.revision, exc.message.removeprefix(f"{sp.stack}: "))
                result.actions += [f"{a} (rolled back)" for a in self.switch.done]
                p.fail(sp.stack, exc, evidence=tuple(self.switch.evidence))
        if result.actions:  # retention, after COMMIT: images no container and no rollback target needs
            retention.prune_after_commit(self.store, self.runtime)
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
                hooks.pre_stop(self.runtime, cid, self.switch.health.timeout_s)
                self.runtime.stop_container(cid)
                self.runtime.remove_container(cid)
            done.append(a.describe())
        for name in p.observed.networks_of(sp.stack):  # by label, never by name prefix
            self.runtime.remove_network(name)
        p.at(Step.COMMIT)
        self.store.forget_stack(sp.stack)
        return done

    def _record_applied(self, p: _Pass, stack: StackSpec) -> None:
        images = {svc.name: p.pinned[(stack.name, svc.name)] for svc in stack.services}
        self.store.record_applied(stack.name, p.revision, stack_to_json(stack), images)
        held = self.store.quarantined().get(stack.name)
        if held is not None and held[0] != p.revision:  # a newer commit applied: the quarantine has ended
            self.store.clear_quarantine(stack.name)

    def _record_revisions(self, p: _Pass, plans: Iterable[StackPlan]) -> None:
        """A no-op stack still moved to the new revision (e.g. only another stack changed)."""
        applied = self.store.applied()
        for sp in plans:
            if sp.remove_stack or sp.stack in p.skipped:
                continue
            stack = p.desired.stack(sp.stack)
            if stack is not None and (sp.stack not in applied or applied[sp.stack].revision != p.revision):
                self._record_applied(p, stack)
            if stack is not None:
                p.converged.setdefault(sp.stack, Outcome.UNCHANGED)


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


def _fold(p: _Pass, result: SyncResult) -> None:
    """Every stack's failure into the one result: the worst sets outcome, error, exit code and step.

    Worst first (``core.outcome.severity``): rolled back, refused, invalid,
    unreachable. The reason names every problem; applied stacks keep their actions.
    """
    if not p.problems:
        return
    found = [(pr.error, pr.step) for pr in p.problems.values()]
    if result.error is not None and all(str(result.error) != str(e) for e, _ in found):
        found.append((result.error, result.step or p.step))
    found.sort(key=lambda f: severity(f[0]), reverse=True)
    result.error, result.step = found[0]
    result.problems = [e for e, _ in found]
    result.outcome = outcome_for(result.error)
    result.revision = result.revision or p.revision or None
    result.evidence = [ev for pr in p.problems.values() for ev in pr.evidence]
    held = [f"{s}: {w}" for s, w in sorted(p.skipped.items())]
    result.reason = "; ".join([str(e) for e, _ in found] + held)
