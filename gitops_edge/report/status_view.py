"""Status of the device, as one JSON-ready dict (``status --json``, ``/status``)."""

from __future__ import annotations

import time
from typing import Any

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.errors import EdgeError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.observed import ObservedState
from gitops_edge.ports.runtime import ContainerRuntime

UNVERIFIED = "no trust policy: images run unverified"


def device_status(config: AgentConfig, store: StateStore, runtime: ContainerRuntime | None) -> dict[str, Any]:
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
    stacks = []
    for name in sorted(names):
        a = applied.get(name)
        services = []
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
