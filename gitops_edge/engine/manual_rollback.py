"""``gitops-edge rollback STACK``: back to the previous good revision, by hand.

The specs and pinned images of the last few good revisions are in the state
store, so this works offline and without the old Git checkout. The revision
that was running is quarantined, so the next sync does not undo the
technician's decision while the ref still points at it.
"""

from __future__ import annotations

from gitops_edge.core.plan import plan_stack
from gitops_edge.core.serialize import stack_from_json
from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import UsageError


def rollback_stack(rec: Reconciler, stack: str) -> str:
    """Back to the newest good revision whose content differs from what runs now.

    Revisions that only moved the stack along (another stack changed) carry the same
    specs and images: going "back" to one of them would change nothing and quarantine
    the running commit for no reason, so they are passed over.
    """
    store = rec.store
    if store.journal():  # a switch in progress (a crash, or the daemon's commit still retiring
        rec.recover()    # its replaced containers): finished or undone first, never written over
    applied = store.applied().get(stack)
    goods = store.good_revisions(stack)
    if applied is None and not goods:
        raise UsageError(f"{stack}: no previous good revision to go back to")
    running_images = next((g[2] for g in goods if applied is not None and g[0] == applied.revision), None)

    def differs(g: tuple[str, str, dict[str, str]]) -> bool:
        if applied is None:
            return True
        return g[1] != applied.specs_json or (running_images is not None and g[2] != running_images)

    candidates = [g for g in goods if applied is None or g[0] != applied.revision]
    if not candidates:
        raise UsageError(f"{stack}: no previous good revision to go back to")
    candidates = [g for g in candidates if differs(g)]
    if not candidates:
        assert applied is not None
        raise UsageError(
            f"{stack}: nothing to roll back: every kept good revision runs the same content as {applied.revision[:12]}"
        )
    revision, specs_json, images = candidates[0]
    spec = stack_from_json(specs_json)
    previous = stack_from_json(applied.specs_json) if applied else None
    observed = rec.runtime.observe()
    sp = plan_stack(spec, revision, observed.for_stack(stack), images, previous)
    rec.stage([sp])
    if not sp.is_noop:
        rec.switch.apply(sp, spec, revision)
    store.record_applied(stack, revision, specs_json, images)
    # A commit already quarantined (the bad one a failed update rolled back from, where the
    # ref still points) stays quarantined: replacing it would let the next sync apply it again.
    if applied is not None and stack not in store.quarantined():
        store.quarantine(stack, applied.revision, "rolled back by hand")
    return f"{stack}: rolled back to {revision[:12]} ({len(sp.actions)} changes)"
