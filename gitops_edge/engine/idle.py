"""The idle short-circuit: a poll where nothing moved costs one ls-remote and one container list.

After a full sync that found nothing to do (or found every stack held back),
the reconciler remembers what that answer was based on: the commit, a digest
of the stacks' containers as the engine lists them (ids, states, health,
images, labels; other Compose projects do not count) and a digest of what the
store holds back (applied revisions, quarantine, suspended and stopped stacks,
the lock). While all three are the same, LOAD, SECURITY, VERIFY and PLAN
would find nothing again, so they are skipped and nothing is written. Any
difference (a new commit, a container removed, stopped or replaced by hand,
an operator's command) forgets the memo and the full sync runs in the same
poll, so drift is still repaired within one interval. A full sync also runs
at least every ``full_check_s`` as a safety net for what the digest does not
see (networks, volumes, a tag moved in a registry).

Stacks using ``pull_policy: always`` ask the registry on every poll, so their
presence disables the short-circuit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from gitops_edge.model.status import Outcome
from gitops_edge.ports.store import EngineStore


@dataclass
class IdleMemo:
    """What the last no-op full sync saw; counts the unchanged polls (in memory only)."""

    full_check_s: float = 600.0
    revision: str | None = None
    engine: str | None = None
    held: str | None = None
    checked_at: float = 0.0  # monotonic time of the last full sync
    stacks: frozenset[str] = frozenset()  # the Compose projects it watches (desired and applied)
    outcome: Outcome = Outcome.UNCHANGED  # its answer (skipped: every stack is held back)
    reason: str = ""
    unchanged_polls: int = 0  # since start, fast or full
    last_unchanged_at: float | None = None  # wall-clock time of the last one

    def armed(self, now: float) -> bool:
        """Is there a memo young enough to skip the full sync?"""
        return self.revision is not None and now - self.checked_at < self.full_check_s

    def remember(self, revision: str, engine: str, held: str, now: float, outcome: Outcome, reason: str) -> None:
        self.revision, self.engine, self.held, self.checked_at = revision, engine, held, now
        self.outcome, self.reason = outcome, reason

    def forget(self) -> None:
        self.revision = self.engine = self.held = None

    def matches(self, revision: str, engine: str, held: str) -> bool:
        return (revision, engine, held) == (self.revision, self.engine, self.held)

    def count_unchanged(self, wall_now: float) -> None:
        self.unchanged_polls += 1
        self.last_unchanged_at = wall_now


def held_digest(store: EngineStore) -> str:
    """What the store says about the stacks, as one digest (reads only)."""
    state = {
        "applied": {s: a.revision for s, a in store.applied().items()},
        "quarantined": store.quarantined(),
        "stopped": store.stopped(),
        "suspended": store.suspended(),
        "lock": store.lock() is not None,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
