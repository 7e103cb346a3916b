"""The result of one sync, as every surface (CLI, daemon, metrics, webhook, MQTT) receives it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops_edge.errors import EdgeError
from gitops_edge.model.plan import Plan
from gitops_edge.model.status import Outcome


@dataclass
class SyncResult:
    """What a sync did; ``gitops_edge.core.outcome`` reads it (exit code, parking, backoff)."""

    outcome: Outcome
    revision: str | None = None
    reason: str = ""
    actions: list[str] = field(default_factory=list)
    plan: Plan | None = None
    error: EdgeError | None = None
