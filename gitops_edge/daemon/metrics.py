"""Prometheus metrics of the daemon (``/metrics``).

Per-stack readiness is read when scraped, from the same ``core.conditions``
reading as ``/status``, so the two never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.core.outcome import source_reached
from gitops_edge.model.condition import Ready, StackCondition
from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome

Conditions = Callable[[], list[StackCondition]]


class Metrics:
    def __init__(self, conditions: Conditions | None = None) -> None:
        self.conditions = conditions
        self._counted: set[str] = set()  # stacks with a per-stack counter series
        self.registry = CollectorRegistry()
        r = self.registry
        self.sync_duration = Histogram(
            "gitops_edge_sync_duration_seconds", "Duration of sync cycles by outcome", ["outcome"], registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        for o in Outcome:  # every outcome's series exists from the start, at zero
            self.sync_duration.labels(outcome=o.value)
        self.rollbacks = Counter("gitops_edge_rollbacks", "Updates that failed and were rolled back", registry=r)
        self.refusals = Counter("gitops_edge_refusals", "Syncs refused by trust or security policy", registry=r)
        self.source_up = Gauge("gitops_edge_source_reachable", "1 if the last sync reached the Git source", registry=r)
        self.last_sync = Gauge("gitops_edge_last_sync_timestamp_seconds", "When the last sync finished", registry=r)
        self.revision = Gauge(
            "gitops_edge_applied_revision_info", "Applied Git revision per stack (value 1)", ["stack", "revision"],
            registry=r,
        )
        self.applied_at = Gauge(
            "gitops_edge_applied_revision_timestamp_seconds", "When each stack's revision was applied", ["stack"],
            registry=r,
        )
        self.quarantined = Gauge("gitops_edge_quarantined_stacks", "Stacks with a quarantined commit", registry=r)
        self.image_bytes = Gauge(
            "gitops_edge_image_bytes", "Size of the images the agent pulled and keeps (current and rollback)",
            registry=r,
        )
        self.image_freed = Gauge(
            "gitops_edge_image_freed_bytes", "Bytes of unused images removed by retention so far", registry=r,
        )
        self.unchanged = Gauge(
            "gitops_edge_unchanged_polls", "Syncs since start that found nothing to change (not in the history)",
            registry=r,
        )
        self.last_unchanged = Gauge(
            "gitops_edge_last_unchanged_poll_timestamp_seconds", "When a sync last found nothing to change",
            registry=r,
        )
        self.ready = Gauge(
            "gitops_edge_stack_ready", "1 if the stack is ready, 0 if not (or unknown); see the reason",
            ["stack"], registry=r,
        )
        self.condition = Gauge(
            "gitops_edge_stack_condition", "The stack's readiness reason (value 1)", ["stack", "ready", "reason"],
            registry=r,
        )
        self.stack_rollbacks = Counter(
            "gitops_edge_stack_rollbacks", "Updates of the stack that were rolled back", ["stack"], registry=r,
        )
        self.stack_refusals = Counter(
            "gitops_edge_stack_refusals", "Syncs that refused the stack's desired state", ["stack"], registry=r,
        )

    def observe(
        self, result: SyncResult, duration_s: float, store: StateStore, unchanged: tuple[int, float | None] = (0, None),
        idle: bool = False,
    ) -> None:
        """After each sync. ``idle``: it stopped at the idle short-circuit, whose basis includes the
        stacks' applied revisions and quarantine (``engine.idle.held_digest``): their series, set by
        the full sync that armed it, stand, and are not rebuilt on every poll."""
        outcome = result.outcome
        self.sync_duration.labels(outcome=outcome.value).observe(duration_s)
        if outcome is Outcome.ROLLED_BACK:
            self.rollbacks.inc()
        if outcome is Outcome.REFUSED:
            self.refusals.inc()
        for stack, o in result.stacks.items():
            self._counted.add(stack)
            if o is Outcome.ROLLED_BACK:
                self.stack_rollbacks.labels(stack=stack).inc()
            elif o is Outcome.REFUSED:
                self.stack_refusals.labels(stack=stack).inc()
        self.source_up.set(1 if source_reached(result) else 0)
        self.last_sync.set(time.time())
        if not idle:
            self.revision.clear()
            self.applied_at.clear()
            for stack, a in store.applied().items():
                self.revision.labels(stack=stack, revision=a.revision).set(1)
                self.applied_at.labels(stack=stack).set(a.applied_at)
            self.quarantined.set(len(store.quarantined()))
        _count, used, freed = store.image_usage()
        self.image_bytes.set(used)
        self.image_freed.set(freed)
        self.unchanged.set(unchanged[0])
        if unchanged[1] is not None:
            self.last_unchanged.set(unchanged[1])

    def refresh(self) -> None:
        """Readiness of every stack now; a removed stack leaves no series."""
        if self.conditions is None:
            return
        conds = self.conditions()
        present = {c.stack for c in conds}
        for counter in (self.stack_rollbacks, self.stack_refusals):
            for stack in self._counted - present:  # a removed stack leaves no series
                try:
                    counter.remove(stack)
                except KeyError:
                    pass
        self._counted &= present
        self.ready.clear()
        self.condition.clear()
        for c in conds:
            self.ready.labels(stack=c.stack).set(1 if c.ready is Ready.TRUE else 0)
            self.condition.labels(stack=c.stack, ready=c.ready.value, reason=c.reason.value).set(1)

    def exposition(self) -> bytes:
        self.refresh()
        return generate_latest(self.registry)
