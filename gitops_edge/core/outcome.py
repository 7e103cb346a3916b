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


def exit_code(result: SyncResult) -> int:
    """0 converged, 1 rolled back, 2 invalid, 3 refused, 4 unreachable (README.md, "Exit codes")."""
    if result.error is not None:
        return result.error.exit_code
    return 1 if result.outcome is Outcome.ROLLED_BACK else 0


def is_permanent(result: SyncResult) -> bool:
    """Invalid or refused input: retrying the same commit cannot help, so the daemon parks it."""
    return (
        result.error is not None
        and not result.error.retryable
        and result.outcome in (Outcome.ERROR, Outcome.REFUSED)
        and result.revision is not None
    )


def counts_as_failure(result: SyncResult) -> bool:
    """A failure the daemon backs off from: one that retrying later may cure."""
    return result.error is not None and result.error.retryable


def retry_after_s(result: SyncResult) -> float | None:
    """The soonest the source may be asked again, when it said so (HTTP 429/503 Retry-After)."""
    return result.error.retry_after_s if result.error is not None else None


def source_reached(result: SyncResult) -> bool:
    """False when the Git source itself could not be reached (a registry failure does not count)."""
    err = result.error
    return not isinstance(err, SourceError)
