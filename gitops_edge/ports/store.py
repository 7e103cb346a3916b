"""The state-store port: the slice of the device's memory the engine reads and writes.

``gitops_edge.adapters.store.sqlite.StateStore`` implements it on SQLite;
``gitops_edge.ports.fakes.FakeStore`` in memory. The journal crosses this port
in its stored form (revision, phase, plain JSON data): ``model.journal`` reads it.
"""

from __future__ import annotations

from typing import Protocol

from gitops_edge.model.condition import StackOutcome
from gitops_edge.model.evidence import Evidence
from gitops_edge.model.status import AppliedStack, Outcome
from gitops_edge.model.step import Step

RawJournal = dict[str, tuple[str, str, dict[str, object]]]
"""stack -> (revision, phase, data) for every switch in progress."""


class JournalStore(Protocol):
    """What a switch needs: write before every irreversible step, clear when done."""

    def journal(self) -> RawJournal: ...

    def journal_write(self, stack: str, revision: str, phase: str, data: dict[str, object]) -> None: ...

    def journal_clear(self, stack: str) -> None: ...


class EngineStore(JournalStore, Protocol):
    # -- sync records
    def start_sync(self, started_at: float | None = None) -> int:
        """A history row for a sync that is about to change something (its crash marker)."""
        ...

    def close_interrupted(self) -> int:
        """Mark rows of syncs that never finished as interrupted; how many (writes only when some)."""
        ...

    def finish_sync(
        self,
        sync_id: int,
        *,
        revision: str | None,
        outcome: Outcome,
        reason: str,
        actions: list[str],
        step: Step | None = None,
        evidence: list[Evidence] | None = None,
    ) -> None: ...

    # -- applied stacks and the last good revisions (for `rollback`)
    def applied(self) -> dict[str, AppliedStack]: ...

    def record_applied(self, stack: str, revision: str, specs_json: str, images: dict[str, str]) -> None: ...

    def forget_stack(self, stack: str) -> None:
        """The stack left Git: its applied revision, quarantine, stopped automation and outcome go."""
        ...

    # -- the last outcome per stack
    def record_stack_outcome(self, outcome: StackOutcome) -> None: ...

    def stack_outcomes(self) -> dict[str, StackOutcome]: ...

    def good_revisions(self, stack: str) -> list[tuple[str, str, dict[str, str]]]:
        """(revision, specs_json, images) of the stack's last good revisions, newest first."""
        ...

    def good_stacks(self) -> list[str]:
        """Every stack with a good revision kept (also stacks since removed from Git)."""
        ...

    # -- images the agent pulled (only those are ever removed)
    def image_pulled(self, ref: str, image_id: str, size: int) -> None: ...

    def pulled_images(self) -> dict[str, tuple[str, int, float]]:
        """ref -> (image id, size, pulled at), oldest first."""
        ...

    def forget_image(self, ref: str, freed: int = 0) -> None:
        """``ref`` is gone; ``freed`` bytes are added to the total freed (status, metrics)."""
        ...

    # -- what holds a stack or the device back
    def quarantine(self, stack: str, revision: str, reason: str) -> None: ...

    def quarantined(self) -> dict[str, tuple[str, str]]:
        """stack -> (revision, reason)."""
        ...

    def clear_quarantine(self, stack: str) -> bool: ...

    def stop_automation(self, stack: str, reason: str) -> None: ...

    def stopped(self) -> dict[str, str]: ...

    def suspended(self) -> dict[str, str]: ...

    def lock(self) -> dict[str, object] | None: ...

    # -- small values (e.g. cached trust verdicts)
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...
