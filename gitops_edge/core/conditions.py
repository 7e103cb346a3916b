"""One stack's readiness from what is known about it: the single reading every surface shows.

``status`` (table and ``--json``), ``/status``, ``/metrics``, the MQTT status
and ``fleet status`` all call ``condition``; none derives readiness itself.
Precedence, first match wins: automation stopped, suspended, a switch in
progress, the last sync's failure for this stack (rolled back and
quarantined, refused, invalid, unreachable), never deployed, the engine
unreachable, a service not healthy or starting, else ready.
"""

from __future__ import annotations

from gitops_edge.model.condition import Ready, Reason, StackCondition, StackFacts
from gitops_edge.model.status import Outcome

_FINE = ("healthy", "running")


def condition(f: StackFacts) -> StackCondition:
    last = f.outcome
    rev = f.applied_revision

    def out(ready: Ready, reason: Reason, message: str) -> StackCondition:
        return StackCondition(f.stack, ready, reason, message, rev, last.step if last else None,
                              last.evidence if last is not None and reason is not Reason.READY else None)

    if f.stopped is not None:
        return out(Ready.FALSE, Reason.AUTOMATION_STOPPED, f"rollback failed, automation stopped: {f.stopped}")
    if f.suspended is not None:
        return out(Ready.UNKNOWN, Reason.SUSPENDED, f"suspended: {f.suspended}")
    if f.switching:
        return out(Ready.UNKNOWN, Reason.PROGRESSING, "an update is being applied")
    if f.quarantined is not None:
        qrev, why = f.quarantined
        reason = Reason.ROLLED_BACK if last is not None and last.outcome is Outcome.ROLLED_BACK \
            and last.revision == qrev else Reason.QUARANTINED
        running = f"; running {rev[:12]}" if rev else ""
        return out(Ready.FALSE, reason,
                   f"commit {qrev[:12]} quarantined until a newer commit: {why}{running}")
    if last is not None and last.outcome in (Outcome.REFUSED, Outcome.ERROR, Outcome.ROLLED_BACK):
        at = f" (commit {last.revision[:12]})" if last.revision else ""
        return out(Ready.FALSE, last.reason, f"{last.message}{at}")
    if rev is None:
        return out(Ready.FALSE, Reason.NOT_DEPLOYED, "never applied on this device")
    if f.services is None:
        return out(Ready.UNKNOWN, Reason.ENGINE_UNREACHABLE, "the container engine could not be asked")
    seen = {s.service for s in f.services}
    missing = sorted(set(f.expected_services) - seen)
    bad = sorted(f"{s.service} {s.health or s.status}" for s in f.services
                 if (s.health or s.status) not in _FINE and s.health != "starting"
                 and not (s.status == "exited" and s.service in f.one_shot))
    if missing or bad:
        parts = [f"{m} missing" for m in missing] + bad
        return out(Ready.FALSE, Reason.UNHEALTHY, ", ".join(parts))
    if any(s.health == "starting" for s in f.services):
        return out(Ready.UNKNOWN, Reason.PROGRESSING, "waiting for health checks")
    up = len({s.service for s in f.services})  # a service's replicas count once
    return out(Ready.TRUE, Reason.READY, f"applied {rev[:12]}, {up} service(s) up")
