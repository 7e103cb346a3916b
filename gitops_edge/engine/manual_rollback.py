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
    store = rec.store
    applied = store.applied().get(stack)
    candidates = [g for g in store.good_revisions(stack) if applied is None or g[0] != applied.revision]
    if not candidates:
        raise UsageError(f"{stack}: no previous good revision to go back to")
    revision, specs_json, images = candidates[0]
    spec = stack_from_json(specs_json)
    previous = stack_from_json(applied.specs_json) if applied else None
    observed = rec.runtime.observe()
    sp = plan_stack(spec, revision, observed.for_stack(stack), images, previous)
    rec.stage([sp])
    if not sp.is_noop:
        rec.switch.apply(sp, spec, revision)
    store.record_applied(stack, revision, specs_json, images)
    if applied is not None:
        store.quarantine(stack, applied.revision, "rolled back by hand")
    return f"{stack}: rolled back to {revision[:12]} ({len(sp.actions)} changes)"
