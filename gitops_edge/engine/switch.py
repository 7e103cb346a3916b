"""The transactional part of an update, per stack (DESIGN.md §7).

SWITCH: old containers are stopped, renamed and have their restart policy
turned off, but are *kept*; new ones are created and started, one
dependency wave at a time. GATE: every new container must turn healthy (or
stay up for ``stable_for``) before the timeout. COMMIT drops the kept
containers; any failure after the switch began rolls the whole stack back
to them. Every irreversible step is journaled first, so a crash at any
moment can be finished or undone by ``recover``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gitops_edge.core.health import Health, Verdict, timeout_reason, verdict
from gitops_edge.engine.faults import crash_point
from gitops_edge.errors import ApplyError, EdgeError, EngineUnavailableError, RollbackFailed
from gitops_edge.model.config import HealthConfig
from gitops_edge.model.observed import KEPT_SUFFIX
from gitops_edge.model.plan import Action, ActionKind, StackPlan
from gitops_edge.model.spec import ServiceSpec, StackSpec
from gitops_edge.ports.runtime import ContainerRuntime

log = logging.getLogger("gitops_edge.engine.switch")
POLL_S = 0.25


@dataclass
class Journal:
    """What a switch in progress has done: enough to undo or finish it."""

    stack: str
    revision: str
    kept: list[dict[str, object]] = field(default_factory=list)  # id, name, service, restart, was_running
    created: list[str] = field(default_factory=list)
    phase: str = "switching"
    failure: str = ""  # why the new version was refused; empty when it was not its fault
    creating: list[str] | None = None  # services this switch creates containers for (None: unknown)

    def data(self) -> dict[str, object]:
        out: dict[str, object] = {"kept": self.kept, "created": self.created}
        if self.creating is not None:
            out["creating"] = self.creating
        if self.failure:
            out["failure"] = self.failure
        return out


def container_name(stack: str, spec: ServiceSpec) -> str:
    return spec.container_name or f"{stack}-{spec.name}-1"


def _completes(stack: StackSpec, service: str) -> bool:
    """Some service waits for this one to exit 0: a completed run is success."""
    return any(
        d.service == service and d.condition == "service_completed_successfully"
        for s in stack.services
        for d in s.depends_on
    )


class StackSwitch:
    def __init__(
        self,
        runtime: ContainerRuntime,
        journal_write: Callable[[str, str, str, dict[str, object]], None],
        journal_clear: Callable[[str], None],
        health: HealthConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rt = runtime
        self._jwrite = journal_write
        self._jclear = journal_clear
        self.health = health
        self.clock = clock
        self.sleep = sleep

    # -- journal -------------------------------------------------------------
    def _save(self, j: Journal) -> None:
        self._jwrite(j.stack, j.revision, j.phase, j.data())

    def _mark(self, stack: str, event: str) -> None:
        """A debug line ``timing STACK EVENT MONOTONIC`` that ``bench/`` parses."""
        log.debug("timing %s %s %.6f", stack, event, self.clock())

    # -- the update ------------------------------------------------------------
    def apply(self, plan: StackPlan, stack: StackSpec, revision: str) -> list[str]:
        """Switch, gate, commit; on failure roll back and raise ``ApplyError``."""
        creating = [a.service for a in plan.actions if a.kind in (ActionKind.CREATE, ActionKind.RECREATE)]
        j = Journal(stack.name, revision, creating=creating)
        done: list[str] = []
        self._save(j)
        try:
            for action in plan.actions:  # removals: kept like replaced containers
                if action.kind is ActionKind.REMOVE:
                    self._keep(j, action.container_ids, action.service)
                    done.append(action.describe())
            waves = sorted({a.wave for a in plan.actions if a.kind is not ActionKind.REMOVE})
            for wave in waves:
                started: list[tuple[Action, str]] = []
                for action in (a for a in plan.actions if a.wave == wave and a.kind is not ActionKind.REMOVE):
                    started.append((action, self._switch_one(j, stack, action, revision)))
                    done.append(action.describe())
                self._gate(stack, started)
                self._stop_running_kept(j)  # start-first: the new ones proved themselves
        except EdgeError as exc:
            self._mark(stack.name, "verdict")
            reason = str(exc)
            log.warning("update of %s to %s failed: %s; rolling back", stack.name, revision[:12], reason)
            if isinstance(exc, EngineUnavailableError):
                self.rollback(j)  # not the new version's fault: undo, no quarantine
                raise
            j.failure = reason
            self.rollback(j)
            raise ApplyError(f"{stack.name}: {reason}; rolled back to the previous containers") from None
        self.commit(j)
        return done

    def _keep(self, j: Journal, ids: tuple[str, ...], service: str, *, stop: bool = True) -> None:
        """Hold the old containers for rollback: restart policy off, renamed, and
        stopped now (stop-first) or after the new one passed the gate (start-first)."""
        for cid in ids:
            state = self.rt.inspect_state(cid)
            name = state.name
            entry: dict[str, object] = {
                "id": cid,
                "name": name,
                "service": service,
                "restart": state.restart_policy,
                "was_running": state.status in ("running", "restarting"),
            }
            if not stop:
                entry["running"] = True
            j.kept.append(entry)
            self._save(j)
            self.rt.set_restart_policy(cid, "no")
            if stop:
                self._stop_kept(cid)
            self.rt.rename_container(cid, f"{name}{KEPT_SUFFIX}")
            crash_point("after-rename")

    def _stop_kept(self, cid: str) -> None:
        crash_point("before-stop")
        self.rt.stop_container(cid)
        crash_point("after-stop")

    def _stop_running_kept(self, j: Journal) -> None:
        for k in j.kept:
            if k.pop("running", False):
                self._save(j)
                self._stop_kept(str(k["id"]))

    def _switch_one(self, j: Journal, stack: StackSpec, action: Action, revision: str) -> str:
        assert action.spec is not None and action.image is not None and action.config_hash is not None
        if action.kind is ActionKind.START:
            cid = action.container_ids[0]
            self.rt.start_container(cid)
            return cid
        self._keep(j, action.container_ids, action.service, stop=not action.start_first)
        cid = self.rt.create_container(
            stack, action.spec, image=action.image, config_hash=action.config_hash, revision=revision
        )
        j.created.append(cid)
        self._save(j)
        crash_point("after-create")
        self.rt.start_container(cid)
        self._mark(stack.name, f"started:{action.service}")
        crash_point("after-start")
        return cid

    # -- the gate --------------------------------------------------------------
    def _gate(self, stack: StackSpec, started: list[tuple[Action, str]]) -> None:
        pending = {cid: a for a, cid in started}
        baselines = {
            cid: self.rt.inspect_state(cid).restart_count
            for cid, a in pending.items()
            if a.kind is ActionKind.START
        }
        deadline = self.clock() + self.health.timeout_s
        last: dict[str, Verdict] = {}
        while pending:
            for cid, action in list(pending.items()):
                v = verdict(
                    self.rt.inspect_state(cid),
                    stable_for_s=self.health.stable_for_s,
                    baseline_restarts=baselines.get(cid, 0),
                    exit_zero_ok=_completes(stack, action.service),
                )
                last[cid] = v
                if v.health is Health.FAIL:
                    raise ApplyError(f"service {action.service} failed the health gate: {v.reason}")
                if v.health is Health.OK:
                    log.info("%s/%s: %s", stack.name, action.service, v.reason)
                    del pending[cid]
            if not pending:
                return
            if self.clock() >= deadline:
                cid, action = next(iter(pending.items()))
                raise ApplyError(
                    f"service {action.service} failed the health gate: "
                    f"{timeout_reason(last[cid], self.health.timeout_s)}"
                )
            self.sleep(POLL_S)

    # -- commit and rollback --------------------------------------------------------
    def commit(self, j: Journal) -> None:
        j.phase = "committing"
        self._save(j)
        crash_point("committing")
        for k in j.kept:
            self.rt.remove_container(str(k["id"]))
        crash_point("after-commit-remove")
        self._jclear(j.stack)

    def rollback(self, j: Journal) -> None:
        """Back to the kept containers; a failure here stops automation (raised)."""
        j.phase = "rolling-back"
        self._save(j)
        try:
            for cid in reversed(j.created):
                self.rt.remove_container(cid)
            crash_point("rollback-after-remove")
            # the kept ones come back in their original order (dependencies first)
            restored: list[str] = []
            for k in j.kept:
                cid = str(k["id"])
                if self.rt.inspect_state(cid).name != k["name"]:  # a crash may have come before the rename
                    self.rt.rename_container(cid, str(k["name"]))
                self.rt.set_restart_policy(cid, str(k["restart"]))
                if k.get("was_running"):
                    self.rt.start_container(cid)
                    restored.append(cid)
            self._wait_restored(j, restored)
            self._mark(j.stack, "restored")
        except EngineUnavailableError:
            # The journal stays: the next sync's ``recover`` finishes the rollback. The engine
            # going away also explains the failure (dockerd stops containers as it shuts down),
            # so it no longer counts against the new version: recovery re-applies it.
            j.failure = ""
            self._save(j)
            raise
        except EdgeError as exc:
            raise RollbackFailed(f"{j.stack}: rollback failed: {exc}") from None
        self._jclear(j.stack)

    def _wait_restored(self, j: Journal, ids: list[str]) -> None:
        deadline = self.clock() + self.health.timeout_s
        pending = set(ids)
        while pending:
            for cid in list(pending):
                state = self.rt.inspect_state(cid)
                v = verdict(state, stable_for_s=min(self.health.stable_for_s, 1.0))
                if v.health is Health.OK:
                    pending.discard(cid)
                elif v.health is Health.FAIL:
                    raise ApplyError(f"restored container {cid[:12]} is not healthy: {v.reason}")
            if pending and self.clock() >= deadline:
                raise ApplyError(f"restored containers not healthy after {self.health.timeout_s:.0f}s")
            if pending:
                self.sleep(POLL_S)
