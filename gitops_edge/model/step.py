"""The named steps of one update, in the order they run (docs/architecture.md, "The update, step by step").

One spelling for code, records and surfaces: a sync record, ``history
--json`` and ``/status`` name the step where a sync stopped (or the last one
it ran when it succeeded), so a technician sees *where* an update failed.
"""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    FETCH = "fetch"  # ask where the ref points; fetch and check out the commit
    LOAD = "load"  # parse and validate every stack of the checkout
    SECURITY = "security"  # the device security policy over host-reaching keys
    VERIFY = "verify"  # pin every image to a digest, check signatures
    PLAN = "plan"  # pure diff of desired against observed
    HOLD = "hold"  # a technician's lock or the update window defers changes
    STAGE = "stage"  # pull images, create networks and volumes; nothing stops yet
    SWITCH = "switch"  # journaled: old containers kept, new ones created and started
    GATE = "gate"  # new containers must turn healthy (or stay up) before the timeout
    COMMIT = "commit"  # drop the kept containers, remember the revision
    ROLLBACK = "rollback"  # the whole stack back to the kept containers


def step_or_none(value: object) -> Step | None:
    """A stored step name read back; None when absent or unknown (an older or newer agent)."""
    try:
        return Step(str(value)) if value else None
    except ValueError:
        return None
