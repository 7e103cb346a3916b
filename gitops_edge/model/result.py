"""The result of one sync, as every surface (CLI, daemon, metrics, webhook, MQTT) receives it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitops_edge.errors import EdgeError
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step

if TYPE_CHECKING:  # annotations only: a quick sync's result imports no spec or plan model
    from gitops_edge.model.evidence import Evidence
    from gitops_edge.model.plan import Plan


@dataclass
class SyncResult:
    """What a sync did; ``gitops_edge.core.outcome`` reads it (exit code, parking, backoff)."""

    outcome: Outcome
    revision: str | None = None
    reason: str = ""
    actions: list[str] = field(default_factory=list)
    plan: Plan | None = None
    error: EdgeError | None = None
    step: Step | None = None  # where the sync stopped, or the last step it ran when it succeeded
    problems: list[EdgeError] = field(default_factory=list)  # every stack's failure; ``error`` is the worst
    evidence: list[Evidence] = field(default_factory=list)  # why services failed their health gate
    stacks: dict[str, Outcome] = field(default_factory=dict)  # what this sync did to each stack it decided on
