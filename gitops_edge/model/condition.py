"""Per-stack readiness, Flux-style: what every surface says about one stack.

``StackOutcome`` is what the engine records per stack after a sync touched it
(the state store keeps the last one); ``core.conditions`` reads it, with the
applied revision, what holds the stack back and the containers it observes,
into one ``StackCondition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gitops_edge.model.evidence import Evidence
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step, step_or_none


class Ready(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Why a stack is (not) ready; CamelCase, as Kubernetes and Flux spell them."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    ROLLED_BACK = "RolledBack"
    QUARANTINED = "Quarantined"
    REFUSED = "Refused"
    INVALID = "Invalid"
    UNREACHABLE = "Unreachable"
    SUSPENDED = "Suspended"
    AUTOMATION_STOPPED = "AutomationStopped"
    UNHEALTHY = "Unhealthy"
    NOT_DEPLOYED = "NotDeployed"
    ENGINE_UNREACHABLE = "EngineUnreachable"


@dataclass(frozen=True)
class StackOutcome:
    """The last thing a sync did to one stack."""

    stack: str
    outcome: Outcome
    reason: Reason
    message: str = ""
    revision: str | None = None  # the revision the sync tried
    step: Step | None = None
    at: float = 0.0
    evidence: Evidence | None = None

    def same_as(self, other: StackOutcome | None) -> bool:
        """Nothing new to record (an idle poll writes nothing)."""
        return other is not None and (self.outcome, self.reason, self.message, self.revision, self.step) == (
            other.outcome, other.reason, other.message, other.revision, other.step)

    def to_data(self) -> dict[str, Any]:
        return {"stack": self.stack, "outcome": self.outcome.value, "reason": self.reason.value,
                "message": self.message, "revision": self.revision,
                "step": self.step.value if self.step else None, "at": self.at,
                "evidence": self.evidence.to_data() if self.evidence else None}

    @staticmethod
    def from_data(data: Any) -> StackOutcome | None:
        try:
            return StackOutcome(
                stack=str(data["stack"]), outcome=Outcome(data["outcome"]), reason=Reason(data["reason"]),
                message=str(data.get("message", "")), revision=data.get("revision"),
                step=step_or_none(data.get("step")), at=float(data.get("at", 0.0)),
                evidence=Evidence.from_data(data.get("evidence")),
            )
        except (KeyError, ValueError, TypeError):
            return None  # written by another agent version: as if never recorded


@dataclass(frozen=True)
class ServiceView:
    """One observed container of a stack, as the condition needs it."""

    service: str
    status: str
    health: str | None = None


@dataclass(frozen=True)
class StackFacts:
    """Everything known about one stack, gathered by the caller (store, engine)."""

    stack: str
    applied_revision: str | None = None
    applied_at: float | None = None
    outcome: StackOutcome | None = None
    quarantined: tuple[str, str] | None = None  # (revision, why)
    stopped: str | None = None
    suspended: str | None = None
    switching: bool = False  # a journaled switch is in progress
    services: tuple[ServiceView, ...] | None = None  # None: the engine could not be asked
    expected_services: tuple[str, ...] = ()  # from the applied spec
    one_shot: tuple[str, ...] = ()  # services others wait to complete: exited is their success


@dataclass(frozen=True)
class StackCondition:
    stack: str
    ready: Ready
    reason: Reason
    message: str
    revision: str | None  # applied
    step: Step | None  # where the last sync of this stack stopped
    evidence: Evidence | None = None
