"""Crash recovery: finish or undo the switches a crash interrupted (docs/architecture.md, "The update, step by step").

The journal decides. ``committing``: the new revision was healthy, so the
commit is finished. Otherwise the stack is rolled back to the kept
containers. A crash is not the new version's fault, so the same sync
re-applies it; but a crash in the middle of a rollback the new version caused
(its ``failure`` is journaled) ends like that rollback would have: the commit
is quarantined.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from gitops_edge.engine.switch import Progress, StackSwitch
from gitops_edge.errors import EdgeError, RollbackFailed
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.journal import Journal, Phase
from gitops_edge.model.observed import KEPT_SUFFIX, ObservedState
from gitops_edge.model.step import Step
from gitops_edge.ports.runtime import ContainerRuntime
from gitops_edge.ports.store import EngineStore

log = logging.getLogger("gitops_edge.engine.recovery")


def journals(store: EngineStore) -> list[Journal]:
    """Every switch in progress, read from its stored form."""
    return [Journal.from_data(stack, rev, phase, data) for stack, (rev, phase, data) in store.journal().items()]


def recover(store: EngineStore, runtime: ContainerRuntime, switch: StackSwitch, progress: Progress) -> list[str]:
    """Finish (COMMIT) or undo (ROLLBACK) every journaled switch; one note per stack.

    A rollback that fails stops automation for the stack and is raised.
    """
    notes = []
    for journal in journals(store):
        j = adopt_unjournaled(journal, runtime.observe())
        stack, rev = j.stack, j.revision
        if j.phase is Phase.COMMITTING:
            progress(Step.COMMIT)
            log.warning("recovering %s: finishing the commit of %s", stack, rev[:12])
            for k in j.kept:
                if k.running:  # start-first, committed but not yet stopped: a graceful stop first
                    _stop_if_present(runtime, k.id)
                _remove_if_present(runtime, k.id)
            store.journal_clear(stack)
            notes.append(f"{stack}: finished interrupted commit of {rev[:12]}")
            continue
        progress(Step.ROLLBACK)
        log.warning("recovering %s: undoing the interrupted switch to %s", stack, rev[:12])
        try:
            switch.rollback(j)
        except RollbackFailed as exc:
            store.stop_automation(stack, str(exc))
            raise
        if j.failure:
            store.quarantine(stack, rev, j.failure)
            notes.append(f"{stack}: finished interrupted rollback of {rev[:12]}: {j.failure}")
        else:
            notes.append(f"{stack}: rolled back interrupted switch to {rev[:12]}")
    return notes


def adopt_unjournaled(j: Journal, observed: ObservedState) -> Journal:
    """The journal as it should have been written when the crash came.

    A crash between create and journal write leaves a new container the journal
    does not name; find it by its labels (this stack, the target revision) among
    the replicas the switch creates: an untouched container of the same revision
    (a switch that only repairs drift) is not the switch's to undo, nor is one a
    failed gate set aside for its logs (``FAILED_SUFFIX``). A journaled
    container that is gone cannot be restored or removed: it is dropped.
    """
    kept_ids = {k.id for k in j.kept}
    created = list(j.created)
    for c in observed.for_stack(j.stack):
        if c.id in kept_ids or c.id in created:
            continue
        if not j.creates(c.service, c.number):
            continue
        if c.revision == j.revision and not c.name.endswith((KEPT_SUFFIX, FAILED_SUFFIX)):
            created.append(c.id)
    present = {c.id for c in observed.containers}
    return replace(
        j,
        kept=tuple(k for k in j.kept if k.id in present),
        created=tuple(cid for cid in created if cid in present),
    )


def _stop_if_present(runtime: ContainerRuntime, cid: str) -> None:
    try:
        runtime.stop_container(cid)
    except EdgeError as exc:
        log.info("kept container %s could not be stopped: %s", cid[:12], exc)


def _remove_if_present(runtime: ContainerRuntime, cid: str) -> None:
    try:
        runtime.remove_container(cid)
    except EdgeError as exc:
        log.info("kept container %s already gone: %s", cid[:12], exc)
