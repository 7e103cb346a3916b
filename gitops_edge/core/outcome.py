"""One reading of a sync's outcome, for every consumer.

The CLI's exit code, the daemon's backoff and parking, metrics, the webhook and
MQTT all ask these functions instead of interpreting errors themselves.
"""

from __future__ import annotations

from gitops_edge.errors import ApplyError, EdgeError, SourceError, TrustError
from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome


def outcome_for(exc: EdgeError) -> Outcome:
    """The outcome of a sync that stopped with ``exc``."""
    if isinstance(exc, TrustError):
        return Outcome.REFUSED
    if isinstance(exc, ApplyError):
        return Outcome.ROLLED_BACK
    return Outcome.ERROR


_WORST_FIRST = (1, 3, 2, 4)  # exit codes: rolled back, refused, invalid, unreachable


def severity(exc: EdgeError) -> int:
    """How bad one stack's failure is, when a sync has several (higher is worse).

    Rolled back (1) first: the device ran the new version and had to undo it.
    Refused (3): the commit asks for what this device's policy forbids. Invalid
    (2): the commit is broken. Unreachable (4) last: nothing is known to be wrong
    with the commit and a later sync will tell. ``sync`` exits with the worst.
    """
    code = exc.exit_code
    return len(_WORST_FIRST) - _WORST_FIRST.index(code) if code in _WORST_FIRST else 0


def exit_code(result: SyncResult) -> int:
    """0 converged, 1 rolled back, 2 invalid, 3 refused, 4 unreachable (README.md, "Exit codes");
    with several stacks failing, the worst of them (``severity``)."""
    if result.error is not None:
        return result.error.exit_code
    return 1 if result.outcome is Outcome.ROLLED_BACK else 0


def is_permanent(result: SyncResult) -> bool:
    """Invalid or refused input: retrying the same commit cannot help, so the daemon parks it."""
    return (
        result.error is not None
        and not any(e.retryable for e in _errors(result))
        and result.outcome in (Outcome.ERROR, Outcome.REFUSED)
        and result.revision is not None
    )


def _errors(result: SyncResult) -> list[EdgeError]:
    """Every stack's failure; a stack that could not be reached must not be parked with the others."""
    return list(result.problems) or ([result.error] if result.error is not None else [])


def counts_as_failure(result: SyncResult) -> bool:
    """A failure the daemon backs off from: one that retrying later may cure."""
    return any(e.retryable for e in _errors(result))


def retry_after_s(result: SyncResult) -> float | None:
    """The soonest the source may be asked again, when it said so (HTTP 429/503 Retry-After)."""
    afters = [e.retry_after_s for e in _errors(result) if e.retry_after_s is not None]
    return max(afters) if afters else None


def source_reached(result: SyncResult) -> bool:
    """False when the Git source itself could not be reached (a registry failure does not count)."""
    err = result.error
    return not isinstance(err, SourceError)
