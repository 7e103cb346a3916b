"""Records the state store keeps: syncs (history) and applied stacks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gitops_edge.model.evidence import Evidence
from gitops_edge.model.step import Step


class Outcome(StrEnum):
    APPLIED = "applied"  # changes were made and the stack converged
    UNCHANGED = "unchanged"  # nothing to do
    ROLLED_BACK = "rolled_back"  # the update failed; the previous state runs again
    REFUSED = "refused"  # trust or security policy said no
    ERROR = "error"  # config, desired-state, source or runtime error; nothing changed
    SKIPPED = "skipped"  # quarantined commit or lock


@dataclass(frozen=True)
class SyncRecord:
    id: int
    started_at: float  # unix seconds
    finished_at: float | None
    revision: str | None
    outcome: Outcome | None
    reason: str
    actions: tuple[str, ...] = ()  # human descriptions of what was done
    duration_s: float | None = None
    step: Step | None = None  # where it stopped (None: still running, or recorded by an older agent)
    repeats: int = 1  # the same failure, seen this many times in a row
    last_at: float | None = None  # when it was seen last, if more than once
    evidence: tuple[Evidence, ...] = ()  # why services failed their health gate (rolled back)


@dataclass(frozen=True)
class AppliedStack:
    stack: str
    revision: str
    applied_at: float
    specs_json: str  # canonical JSON of the applied StackSpec (for reasons and rollback)
