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

A fresh process (``gitops-edge sync`` from cron or a technician) has no memo in
memory, so the memo is also kept in the store (``SavedMemo``), written only when
what it is based on changes (a re-armed memo with the same basis writes nothing:
the zero-write idle rule holds). It adds to the daemon's basis what a fresh
process cannot assume unchanged: the agent's version and a digest of the agent
config as parsed, plus the files it names (trust keys and roots, allowed signers,
credentials) and the device's secrets directory (``device_key``, computed by the
config adapter). ``quick_sync`` answers from it after one ls-remote and one
container list, or says the full sync must run. A sync that changes or fails
something empties it (a failed stack's outcome stays recorded until a full sync
finds it ready again: an old memo must not answer for it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step

if TYPE_CHECKING:  # a quick sync imports no more than it runs
    from gitops_edge.ports.runtime import ContainerRuntime
    from gitops_edge.ports.source import GitSource
    from gitops_edge.ports.store import EngineStore

log = logging.getLogger("gitops_edge.engine.idle")

SAVED_KEY = "idle:memo"  # the store's key-value entry holding the SavedMemo


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


@dataclass(frozen=True)
class SavedMemo:
    """The memo as the store keeps it, for the next process: what it was based on and its answer."""

    device: str  # ``device_key``: agent version, parsed config, the files it names, the secrets directory
    revision: str
    engine: str
    held: str
    stacks: tuple[str, ...]
    outcome: str
    reason: str
    at: float  # wall-clock time of the full sync that armed it

    def basis(self) -> tuple[object, ...]:
        """Everything but the time: a re-armed memo with the same basis is not written again."""
        return (self.device, self.revision, self.engine, self.held, self.stacks, self.outcome, self.reason)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> SavedMemo | None:
        """None for no memo or one this version cannot read (the full sync then runs)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            memo = cls(**{**data, "stacks": tuple(data["stacks"])})
            Outcome(memo.outcome)
        except (ValueError, TypeError, KeyError):
            return None
        texts = (memo.device, memo.revision, memo.engine, memo.held, memo.reason, *memo.stacks)
        if not isinstance(memo.at, int | float) or not all(isinstance(t, str) for t in texts):
            return None
        return memo


def save_memo(store: EngineStore, memo: SavedMemo, *, refresh: bool, full_check_s: float) -> None:
    """Keep ``memo`` for the next process, writing only when its basis changed, or (``refresh``,
    a one-shot process) when the stored one is too old to be used any more."""
    stored = SavedMemo.from_json(store.get(SAVED_KEY))
    fresh = stored is not None and 0 <= memo.at - stored.at < full_check_s
    if stored is not None and stored.basis() == memo.basis() and (fresh or not refresh):
        return
    store.put(SAVED_KEY, memo.to_json())


def quick_sync(store: EngineStore, source: GitSource, runtime: ContainerRuntime, device: Callable[[], str],
               now: float, full_check_s: float) -> SyncResult | None:
    """A fresh process's idle short-circuit: the stored memo's answer when nothing it was based on
    moved (one ls-remote, one container list), else None: the full sync must run.

    Cheapest checks first; ``now`` is wall-clock (a clock set back counts as too old).
    """
    saved = SavedMemo.from_json(store.get(SAVED_KEY))
    if saved is None or not 0 <= now - saved.at < full_check_s or store.journal():
        return None  # no memo, too old, or a crash left a switch to finish
    if store.close_interrupted():  # (reads only, as a rule) a process died in a sync: the full one looks
        log.warning("history: a sync cut short by the agent stopping is marked interrupted")
        return None
    if saved.device != device():
        return None
    if held_digest(store) != saved.held:
        return None
    revision = source.remote_revision()  # (on failure the caller runs the full sync, which reports it)
    if revision != saved.revision or runtime.fingerprint(frozenset(saved.stacks)) != saved.engine:
        return None
    return SyncResult(Outcome(saved.outcome), revision=revision, reason=saved.reason, step=Step.FETCH)
