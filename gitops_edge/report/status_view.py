"""Status of the device, as one JSON-ready dict (``status --json``, ``/status``, MQTT).

The TypedDicts are the shape of that document: the CLI's table, the status
endpoint and the MQTT status payload all read these keys.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypedDict

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.core.conditions import condition
from gitops_edge.core.serialize import stack_services_from_json
from gitops_edge.errors import EdgeError
from gitops_edge.model.condition import ServiceView, StackCondition, StackFacts
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.evidence import Evidence

if TYPE_CHECKING:  # annotations only (ports.runtime would import the spec model)
    from gitops_edge.model.observed import ObservedState
    from gitops_edge.ports.runtime import ContainerRuntime
    from gitops_edge.ports.store import EngineStore

UNVERIFIED = "no trust policy: images run unverified"


class ServiceStatus(TypedDict):
    service: str
    container: str
    status: str  # docker state
    health: str  # healthy | unhealthy | starting, else the docker state ("running", ...)
    image: str | None
    revision: str | None


class QuarantineStatus(TypedDict):
    revision: str
    reason: str


class EvidenceStatus(TypedDict):
    service: str
    container: str  # kept stopped as <name>-gitops-edge-failed until the next update (docker logs)
    exit_code: int | None
    health_log: str
    logs: list[str]
    hook: str  # a failed post_start hook: which, exit status, output; "" otherwise


class StackStatus(TypedDict):
    stack: str
    ready: str  # True | False | Unknown (core.conditions)
    reason: str  # CamelCase: Ready, Progressing, RolledBack, Quarantined, Refused, Invalid, ...
    message: str
    step: str | None  # where the last sync of this stack stopped
    evidence: EvidenceStatus | None  # why its last update failed its health gate
    revision: str | None  # applied
    applied_at: float | None
    services: list[ServiceStatus]
    quarantined: QuarantineStatus | None
    automation_stopped: str | None  # why, when a rollback failed
    suspended: str | None  # why, when a technician suspended it


class SourceStatus(TypedDict):
    url: str  # credentials redacted
    ref: str
    path: str


class WindowStatus(TypedDict):
    days: list[str]
    start: str  # HH:MM
    end: str


class LastSync(TypedDict):
    revision: str | None
    outcome: str  # an Outcome value, or "running"
    step: str | None  # the step where it stopped (a Step value), None for a sync still running
    reason: str
    at: float
    age_s: float


class UnchangedPolls(TypedDict):
    count: int  # since the daemon started (kept in memory: an idle poll writes nothing)
    last_at: float | None


class ImageUsage(TypedDict):
    pulled: int  # images the agent pulled and still keeps (current and rollback revisions)
    bytes: int  # their size as the engine reports it
    freed_bytes: int  # removed by retention so far


class DeviceStatus(TypedDict):
    device: str
    source: SourceStatus
    trust: str
    engine_error: str | None
    lock: dict[str, object] | None  # who, reason, at
    update_windows: list[WindowStatus]
    last_sync: LastSync | None
    unchanged_polls: UnchangedPolls | None  # None outside the daemon
    images: ImageUsage
    stacks: list[StackStatus]


def device_status(
    config: AgentConfig,
    store: StateStore,
    runtime: ContainerRuntime | None,
    unchanged: tuple[int, float | None] | None = None,
) -> DeviceStatus:
    observed: ObservedState | None = None
    engine_error = None
    if runtime is not None:
        try:
            observed = runtime.observe_containers()  # status shows no networks or volumes
        except EdgeError as exc:
            engine_error = str(exc)
    applied = store.applied()
    quarantined = store.quarantined()
    stopped = store.stopped()
    suspended = store.suspended()
    stacks: list[StackStatus] = []
    for cond in stack_conditions(store, observed):
        name = cond.stack
        a = applied.get(name)
        services: list[ServiceStatus] = []
        if observed is not None:
            live = (c for c in observed.for_stack(name) if not c.kept)
            for c in sorted(live, key=lambda c: (c.service, c.name)):
                services.append(
                    {
                        "service": c.service,
                        "container": c.name,
                        "status": c.status,
                        "health": c.health or ("running" if c.status == "running" else c.status),
                        "image": c.image,
                        "revision": c.revision,
                    }
                )
        q = quarantined.get(name)
        stacks.append(
            {
                "stack": name,
                "ready": cond.ready.value,
                "reason": cond.reason.value,
                "message": cond.message,
                "step": cond.step.value if cond.step else None,
                "evidence": _evidence(cond.evidence),
                "revision": a.revision if a else None,
                "applied_at": a.applied_at if a else None,
                "services": services,
                "quarantined": {"revision": q[0], "reason": q[1]} if q else None,
                "automation_stopped": stopped.get(name),
                "suspended": suspended.get(name),
            }
        )
    last = store.last_sync()
    pulled, used, freed = store.image_usage()
    return {
        "device": config.device.id,
        "source": {"url": _redact(config.source.url), "ref": config.source.ref, "path": config.source.path},
        "trust": UNVERIFIED if config.trust is None else
        f"images verified: {len(config.trust.rules)} rule(s), default {config.trust.default}",
        "engine_error": engine_error,
        "lock": store.lock(),
        "update_windows": [
            {"days": list(w.days), "start": w.start.strftime("%H:%M"), "end": w.end.strftime("%H:%M")}
            for w in config.update_windows
        ],
        "last_sync": None
        if last is None
        else {
            "revision": last.revision,
            "outcome": last.outcome.value if last.outcome else "running",
            "step": last.step.value if last.step else None,
            "reason": last.reason,
            "at": last.started_at,
            "age_s": round(time.time() - last.started_at, 1),
        },
        "images": {"pulled": pulled, "bytes": used, "freed_bytes": freed},
        "unchanged_polls": None if unchanged is None else {"count": unchanged[0], "last_at": unchanged[1]},
        "stacks": stacks,
    }


def stack_conditions(store: EngineStore, observed: ObservedState | None) -> list[StackCondition]:
    """Every stack of this device (not every Compose project on the host), by name, read by
    ``core.conditions``: the status table, ``/status``, ``/metrics`` and MQTT all show these."""
    applied = store.applied()
    quarantined = store.quarantined()
    stopped = store.stopped()
    suspended = store.suspended()
    outcomes = store.stack_outcomes()
    # a committing switch has passed its gate (only its replaced containers are still being removed)
    journal = store.journal()
    switching: set[str] = set()
    if journal:  # the journal model only when a switch is under way (a steady device's status needs none)
        from gitops_edge.model.journal import Phase

        switching = {s for s, (_rev, phase, _data) in journal.items() if phase != Phase.COMMITTING.value}
    names = set(applied) | set(quarantined) | set(stopped) | set(suspended) | set(outcomes)
    out = []
    for name in sorted(names):
        a = applied.get(name)
        expected, one_shot = stack_services_from_json(a.specs_json) if a is not None else ((), ())
        services = None if observed is None else tuple(
            ServiceView(c.service, c.status, c.health) for c in observed.for_stack(name) if not c.kept
        )
        out.append(condition(StackFacts(
            stack=name,
            applied_revision=a.revision if a else None,
            applied_at=a.applied_at if a else None,
            outcome=outcomes.get(name),
            quarantined=quarantined.get(name),
            stopped=stopped.get(name),
            suspended=suspended.get(name),
            switching=name in switching,
            services=services,
            expected_services=expected,
            one_shot=one_shot,
        )))
    return out


def _evidence(ev: Evidence | None) -> EvidenceStatus | None:
    if ev is None:
        return None
    return {"service": ev.service, "container": ev.container, "exit_code": ev.exit_code,
            "health_log": ev.health_log, "logs": list(ev.logs), "hook": ev.hook}


def _redact(url: str) -> str:
    """Never show credentials embedded in a URL."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
