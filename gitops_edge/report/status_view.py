"""Status of the device, as one JSON-ready dict (``status --json``, ``/status``, MQTT).

The TypedDicts are the shape of that document: the CLI's table, the status
endpoint and the MQTT status payload all read these keys.
"""

from __future__ import annotations

import time
from typing import TypedDict

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.errors import EdgeError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.observed import ObservedState
from gitops_edge.ports.runtime import ContainerRuntime

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


class StackStatus(TypedDict):
    stack: str
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


class DeviceStatus(TypedDict):
    device: str
    source: SourceStatus
    trust: str
    engine_error: str | None
    lock: dict[str, object] | None  # who, reason, at
    update_windows: list[WindowStatus]
    last_sync: LastSync | None
    stacks: list[StackStatus]


def device_status(config: AgentConfig, store: StateStore, runtime: ContainerRuntime | None) -> DeviceStatus:
    observed: ObservedState | None = None
    engine_error = None
    if runtime is not None:
        try:
            observed = runtime.observe()
        except EdgeError as exc:
            engine_error = str(exc)
    applied = store.applied()
    quarantined = store.quarantined()
    stopped = store.stopped()
    suspended = store.suspended()
    names = set(applied) | set(quarantined) | set(stopped) | set(suspended)  # this device's stacks, not every project
    stacks: list[StackStatus] = []
    for name in sorted(names):
        a = applied.get(name)
        services: list[ServiceStatus] = []
        if observed is not None:
            for c in sorted(observed.for_stack(name), key=lambda c: (c.service, c.name)):
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
                "revision": a.revision if a else None,
                "applied_at": a.applied_at if a else None,
                "services": services,
                "quarantined": {"revision": q[0], "reason": q[1]} if q else None,
                "automation_stopped": stopped.get(name),
                "suspended": suspended.get(name),
            }
        )
    last = store.last_sync()
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
        "stacks": stacks,
    }


def _redact(url: str) -> str:
    """Never show credentials embedded in a URL."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
