"""The transactional steps of an update, per stack (docs/architecture.md, "The update, step by step").

SWITCH: old containers are stopped, renamed and have their restart policy
turned off, but are *kept*; new ones are created and started, one
dependency wave at a time. GATE: every new container must turn healthy (or
stay up for ``stable_for``) before the timeout. COMMIT drops the kept
containers; any failure after the switch began is a ROLLBACK of the whole
stack to them. Every irreversible step is journaled first
(``model.journal``), so a crash at any moment can be finished or undone by
``engine.recovery``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gitops_edge.core.health import Health, Verdict, timeout_reason, verdict
from gitops_edge.engine import hooks
from gitops_edge.engine.faults import crash_point
from gitops_edge.errors import ApplyError, EdgeError, EngineUnavailableError, RollbackFailed
from gitops_edge.model.config import HealthConfig
from gitops_edge.model.evidence import FAILED_SUFFIX, LOG_LINES, Evidence
from gitops_edge.model.journal import Journal, KeptContainer, Phase
from gitops_edge.model.observed import KEPT_SUFFIX, ContainerState
from gitops_edge.model.plan import Action, ActionKind, StackPlan
from gitops_edge.model.spec import ServiceSpec, StackSpec
from gitops_edge.model.step import Step
from gitops_edge.ports.clock import Clock, SystemClock
from gitops_edge.ports.runtime import ContainerRuntime
from gitops_edge.ports.store import JournalStore

log = logging.getLogger("gitops_edge.engine.switch")
WAIT_MAX_S = 1.0  # the gate re-inspects at least this often even if no engine event came
PROGRESS_EVERY_S = 5.0  # a health wait says how long it has waited this often

Progress = Callable[[Step], None]
"""Told the step a switch enters, so the sync knows where it stopped."""


def _ignore(_step: Step) -> None:
    return None


def _completes(stack: StackSpec, service: str) -> bool:
    """Some service waits for this one to exit 0: a completed run is success."""
    return any(
        d.service == service and d.condition == "service_completed_successfully"
        for s in stack.services
        for d in s.depends_on
    )


class _Journaled:
    """The journal of one switch in progress: each new record is saved before the step it guards."""

    def __init__(self, store: JournalStore, journal: Journal) -> None:
        self.store = store
        self.now = journal

    def save(self, journal: Journal) -> None:
        self.store.journal_write(journal.stack, journal.revision, journal.phase.value, journal.to_data())
        self.now = journal

    def clear(self) -> None:
        self.store.journal_clear(self.now.stack)


@dataclass
class _Retirement:
    """The kept containers of a committed switch, being stopped and removed off the sync's path."""

    journal: Journal
    thread: threading.Thread | None = None
    error: BaseException | None = field(default=None)


class StackSwitch:
    def __init__(
        self,
        runtime: ContainerRuntime,
        store: JournalStore,
        health: HealthConfig,
        clock: Clock | None = None,
        *,
        retire_in_background: bool = False,
    ) -> None:
        self.rt = runtime
        self.store = store
        self.health = health
        self.clock: Clock = clock if clock is not None else SystemClock()
        # The daemon's: once COMMITTING is journaled, the kept containers are stopped and removed by
        # a thread and the sync reports at once; ``settle`` (the next sync, shutdown) joins it and
        # clears the journal. A crash meanwhile leaves COMMITTING, which recovery finishes.
        self.retire_in_background = retire_in_background
        self._retiring: list[_Retirement] = []
        self.evidence: list[Evidence] = []  # why the last update's gate failed
        self._failed: str | None = None  # the container that failed it: kept stopped for `docker logs`
        self.done: list[str] = []  # the actions of the last update, done before it failed

    def _mark(self, stack: str, event: str) -> None:
        """A debug line ``timing STACK EVENT MONOTONIC`` that ``bench/`` parses."""
        log.debug("timing %s %s %.6f", stack, event, self.clock.monotonic())

    # -- the update ------------------------------------------------------------
    def apply(self, plan: StackPlan, stack: StackSpec, revision: str, progress: Progress = _ignore) -> list[str]:
        """SWITCH, GATE, COMMIT; on failure ROLLBACK and raise ``ApplyError``.

        ``progress`` hears each step as it starts. After a clean rollback it is
        told the step that failed again: that is where the update stopped; a
        rollback that fails leaves it at ROLLBACK.
        """
        self.settle(stack.name)  # its last commit's retirement, if still going
        creating = tuple(f"{a.service}:{max(a.number, 1)}" for a in plan.actions
                         if a.kind in (ActionKind.CREATE, ActionKind.RECREATE))
        self.evidence, self._failed = [], None
        self._drop_failed(stack.name)
        t = _Journaled(self.store, Journal(stack.name, revision, creating=creating))
        done: list[str] = []
        self.done = done  # what was done, also when it ends rolled back (history lists it)
        step = Step.SWITCH

        def enter(s: Step) -> None:
            nonlocal step
            step = s
            progress(s)

        enter(Step.SWITCH)
        t.save(t.now)
        try:
            for action in plan.actions:  # removals: kept like replaced containers
                if action.kind is ActionKind.REMOVE:
                    self._keep(t, action.container_ids, action.service)
                    done.append(action.describe())
            waves = sorted({a.wave for a in plan.actions if a.kind is not ActionKind.REMOVE})
            for wave in waves:
                enter(Step.SWITCH)
                started: list[tuple[Action, str]] = []
                for action in (a for a in plan.actions if a.wave == wave and a.kind is not ActionKind.REMOVE):
                    started.append((action, self._switch_one(t, stack, action, revision)))
                    done.append(action.describe())
                enter(Step.GATE)
                self._gate(stack, started)
                if wave == waves[-1] and self.retire_in_background:
                    break  # the commit's retirement stops them, off the sync's path
                enter(Step.SWITCH)
                self._stop_running_kept(t)  # start-first: the new ones proved themselves
        except EdgeError as exc:
            failed_at = step
            self._mark(stack.name, "verdict")
            reason = str(exc)
            # the reason is logged once, with the outcome, when the rollback is done (engine.reconcile)
            log.info("update of %s to %s failed at %s; rolling back", stack.name, revision[:12], failed_at.value)
            progress(Step.ROLLBACK)
            if isinstance(exc, EngineUnavailableError):
                self.rollback(t.now)  # not the new version's fault: undo, no quarantine
                progress(failed_at)
                raise
            self.rollback(replace(t.now, failure=reason), keep_failed=self._failed)
            progress(failed_at)
            raise ApplyError(f"{stack.name}: {reason}; rolled back to the previous containers") from None
        enter(Step.COMMIT)
        self.commit(t.now)
        return done

    def _drop_failed(self, stack: str) -> None:
        """The container a previous update of this stack kept for its logs goes now."""
        for c in self.rt.observe().for_stack(stack):
            if c.name.endswith(FAILED_SUFFIX):
                try:
                    self.rt.remove_container(c.id)
                except EdgeError as exc:
                    log.warning("%s: could not remove the failed container %s: %s", stack, c.name, exc)

    def _collect(self, stack: StackSpec, action: Action, cid: str, state: ContainerState) -> None:
        """Exit code, health output and the last log lines of a container that failed its gate.

        ``state`` is the inspection the verdict was made on: a restarting container's
        exit code is gone once the engine started it again.
        """
        self._failed = cid
        try:
            lines = self.rt.logs(cid, LOG_LINES)
        except EdgeError as exc:
            log.warning("%s/%s: no evidence of the failure: %s", stack.name, action.service, exc)
            return
        # a container the engine restarted runs again with its exit code reset: then it is unknown
        exited = state.status in ("exited", "dead", "restarting") or state.exit_code != 0
        self.evidence.append(Evidence(
            service=action.service,
            container=state.name or cid[:12],
            exit_code=state.exit_code if exited else None,
            health_log=state.health_log,
            logs=tuple(lines),
        ))

    def _keep(self, t: _Journaled, ids: tuple[str, ...], service: str, *, stop: bool = True) -> None:
        """Hold the old containers for rollback: restart policy off, renamed, and
        stopped now (stop-first) or after the new one passed the gate (start-first)."""
        for cid in ids:
            state = self.rt.inspect_state(cid)
            name = state.name
            t.save(t.now.keep(KeptContainer(
                id=cid,
                name=name,
                service=service,
                restart=state.restart_policy,
                was_running=state.status in ("running", "restarting"),
                running=not stop,
            )))
            self.rt.set_restart_policy(cid, "no")
            if stop:
                self._stop_kept(cid)
            self.rt.rename_container(cid, f"{name}{KEPT_SUFFIX}")
            crash_point("after-rename")

    def _stop_kept(self, cid: str) -> None:
        crash_point("before-stop")
        hooks.pre_stop(self.rt, cid, self.health.timeout_s)
        self.rt.stop_container(cid)
        crash_point("after-stop")

    def _stop_running_kept(self, t: _Journaled) -> None:
        for k in t.now.kept:
            if k.running:
                t.save(t.now.stopped(k.id))
                self._stop_kept(k.id)

    def _switch_one(self, t: _Journaled, stack: StackSpec, action: Action, revision: str) -> str:
        assert action.spec is not None and action.image is not None and action.config_hash is not None
        if action.kind is ActionKind.START:
            cid = action.container_ids[0]
            self.rt.start_container(cid)
            self._post_start(action.spec, cid)
            return cid
        self._keep(t, action.container_ids, action.service, stop=not action.start_first)
        cid = self.rt.create_container(
            stack, action.spec, image=action.image, config_hash=action.config_hash, revision=revision,
            number=max(action.number, 1),
        )
        t.save(t.now.create(cid))
        crash_point("after-create")
        self.rt.start_container(cid)
        self._mark(stack.name, f"started:{action.service}")
        crash_point("after-start")
        self._post_start(action.spec, cid)
        return cid

    def _post_start(self, spec: ServiceSpec, cid: str) -> None:
        """A failing post_start hook fails the start, as it fails ``docker compose up``: roll back."""
        failed = hooks.post_start(self.rt, spec, cid, self.health.timeout_s)
        if failed is not None:
            reason, evidence = failed
            self._failed = cid
            self.evidence.append(evidence)
            raise ApplyError(reason)

    # -- GATE ------------------------------------------------------------------
    def _gate(self, stack: StackSpec, started: list[tuple[Action, str]]) -> None:
        pending = {cid: a for a, cid in started}
        baselines = {
            cid: self.rt.inspect_state(cid).restart_count
            for cid, a in pending.items()
            if a.kind is ActionKind.START
        }
        began = self.clock.monotonic()
        deadline = began + self.health.timeout_s
        told = began
        last: dict[str, Verdict] = {}
        states: dict[str, ContainerState] = {}
        while pending:
            mark = self.rt.event_mark()  # before inspecting: a change after it wakes the wait below
            for cid, action in list(pending.items()):
                states[cid] = self.rt.inspect_state(cid)
                v = verdict(
                    states[cid],
                    stable_for_s=self.health.stable_for_s,
                    baseline_restarts=baselines.get(cid, 0),
                    exit_zero_ok=_completes(stack, action.service),
                )
                last[cid] = v
                if v.health is Health.FAIL:
                    self._collect(stack, action, cid, states[cid])
                    raise ApplyError(f"service {action.service} failed the health gate: {v.reason}")
                if v.health is Health.OK:
                    log.info("%s/%s: %s", stack.name, action.service, v.reason)
                    del pending[cid]
            if not pending:
                return
            now = self.clock.monotonic()
            if now >= deadline:
                cid, action = next(iter(pending.items()))
                self._collect(stack, action, cid, states[cid])
                raise ApplyError(
                    f"service {action.service} failed the health gate: "
                    f"{timeout_reason(last[cid], self.health.timeout_s)}"
                )
            if now - told >= PROGRESS_EVERY_S:
                told = now
                waiting = ", ".join(sorted(a.service for a in pending.values()))
                log.info("%s: waiting for %s to turn healthy: %.0fs of %.0fs",
                         stack.name, waiting, now - began, self.health.timeout_s)
            due = [deadline - now, told + PROGRESS_EVERY_S - now, WAIT_MAX_S]
            due += [self._stable_in(states[cid], self.health.stable_for_s) for cid in pending]
            self.rt.wait_for_change(tuple(pending), mark, max(min(due), 0.0))

    @staticmethod
    def _stable_in(state: ContainerState, stable_for_s: float) -> float:
        """Seconds until a running container without a healthcheck has been up ``stable_for``
        (no engine event marks that moment); infinity for the others."""
        if state.health is None and state.status == "running":
            return max(stable_for_s - state.running_for_s, 0.0) + 0.01
        return float("inf")

    # -- COMMIT and ROLLBACK -----------------------------------------------------
    def commit(self, journal: Journal) -> None:
        t = _Journaled(self.store, journal)
        t.save(replace(journal, phase=Phase.COMMITTING))
        crash_point("committing")
        if self.retire_in_background and journal.kept:
            job = _Retirement(t.now)
            job.thread = threading.Thread(target=self._retire, args=(job,), name=f"retire-{journal.stack}",
                                          daemon=True)  # a stop mid-way leaves COMMITTING: recovery ends it
            self._retiring.append(job)
            job.thread.start()
            return
        self._retire_now(journal)
        t.clear()

    def _retire_now(self, journal: Journal) -> None:
        """Stop (gracefully) the kept containers still serving, then remove every kept one."""
        for k in journal.kept:
            if k.running:
                self._stop_kept(k.id)
        for k in journal.kept:
            self.rt.remove_container(k.id)
        crash_point("after-commit-remove")

    def _retire(self, job: _Retirement) -> None:
        try:
            self._retire_now(job.journal)
        except BaseException as exc:  # settle reports it; the journal stays for recovery
            job.error = exc

    def settle(self, stack: str | None = None) -> None:
        """Wait for the background retirements (of ``stack``, else all) and clear their journals
        (this thread owns the store). One that failed keeps its COMMITTING journal: the next
        sync's recovery finishes it."""
        jobs = [j for j in self._retiring if stack is None or j.journal.stack == stack]
        self._retiring = [j for j in self._retiring if j not in jobs]
        for job in jobs:
            if job.thread is not None:
                job.thread.join()
            name = job.journal.stack
            if job.error is not None:
                log.warning("%s: removing the replaced containers failed (%s); the next sync finishes it",
                            name, job.error)
                continue
            stored = self.store.journal().get(name)
            ours = (job.journal.revision, Phase.COMMITTING.value, job.journal.to_data())
            if stored is not None and tuple(stored) == ours:  # not another process's switch since
                _Journaled(self.store, job.journal).clear()

    def rollback(self, journal: Journal, keep_failed: str | None = None) -> None:
        """Back to the kept containers; a failure here stops automation (raised).

        ``keep_failed``: the new container that failed the gate stays, stopped and
        renamed ``<name><FAILED_SUFFIX>``, so ``docker logs`` still works until the
        next update of the stack (recovery passes none: it removes every new one).
        """
        t = _Journaled(self.store, journal)
        t.save(replace(journal, phase=Phase.ROLLING_BACK))
        try:
            for cid in reversed(journal.created):
                hooks.pre_stop(self.rt, cid, self.health.timeout_s)  # a new container stops too
                if cid != keep_failed or not self._set_aside(cid):
                    self.rt.remove_container(cid)
            crash_point("rollback-after-remove")
            # the kept ones come back in their original order (dependencies first)
            restored: list[str] = []
            for k in journal.kept:
                if self.rt.inspect_state(k.id).name != k.name:  # a crash may have come before the rename
                    self.rt.rename_container(k.id, k.name)
                self.rt.set_restart_policy(k.id, k.restart)
                if k.was_running:
                    self.rt.start_container(k.id)
                    restored.append(k.id)
            self._wait_restored(restored)
            self._mark(journal.stack, "restored")
        except EngineUnavailableError:
            # The journal stays: the next sync's recovery finishes the rollback. The engine
            # going away also explains the failure (dockerd stops containers as it shuts down),
            # so it no longer counts against the new version: recovery re-applies it.
            t.save(replace(t.now, failure=""))
            raise
        except EdgeError as exc:
            raise RollbackFailed(f"{journal.stack}: rollback failed: {exc}") from None
        t.clear()

    def _set_aside(self, cid: str) -> bool:
        """Stop and rename the failed container out of the service's way; False if that did not work."""
        try:
            self.rt.set_restart_policy(cid, "no")
            self.rt.stop_container(cid)
            name = self.rt.inspect_state(cid).name
            self.rt.rename_container(cid, f"{name}{FAILED_SUFFIX}")
            log.info("kept the failed container as %s%s for `docker logs`", name, FAILED_SUFFIX)
            return True
        except EngineUnavailableError:
            raise
        except EdgeError as exc:
            log.warning("could not keep the failed container %s: %s", cid[:12], exc)
            return False

    def _wait_restored(self, ids: list[str]) -> None:
        deadline = self.clock.monotonic() + self.health.timeout_s
        pending = set(ids)
        while pending:
            mark = self.rt.event_mark()
            states: dict[str, ContainerState] = {}
            for cid in list(pending):
                state = states[cid] = self.rt.inspect_state(cid)
                v = verdict(state, stable_for_s=min(self.health.stable_for_s, 1.0))
                if v.health is Health.OK:
                    pending.discard(cid)
                elif v.health is Health.FAIL:
                    raise ApplyError(f"restored container {cid[:12]} is not healthy: {v.reason}")
            now = self.clock.monotonic()
            if pending and now >= deadline:
                raise ApplyError(f"restored containers not healthy after {self.health.timeout_s:.0f}s")
            if pending:
                due = [deadline - now, WAIT_MAX_S]
                due += [self._stable_in(states[cid], min(self.health.stable_for_s, 1.0)) for cid in pending]
                self.rt.wait_for_change(tuple(pending), mark, max(min(due), 0.0))
