"""Prometheus metrics of the daemon (``/metrics``)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.core.outcome import source_reached
from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome


class Metrics:
    def __init__(self) -> None:
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

    def observe(self, result: SyncResult, duration_s: float, store: StateStore) -> None:
        outcome = result.outcome
        self.sync_duration.labels(outcome=outcome.value).observe(duration_s)
        if outcome is Outcome.ROLLED_BACK:
            self.rollbacks.inc()
        if outcome is Outcome.REFUSED:
            self.refusals.inc()
        self.source_up.set(1 if source_reached(result) else 0)
        self.last_sync.set(time.time())
        self.revision.clear()
        self.applied_at.clear()
        for stack, a in store.applied().items():
            self.revision.labels(stack=stack, revision=a.revision).set(1)
            self.applied_at.labels(stack=stack).set(a.applied_at)
        self.quarantined.set(len(store.quarantined()))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
