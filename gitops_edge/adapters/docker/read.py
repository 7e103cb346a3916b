"""Docker Engine API responses -> observed-state model. Pure parsing.

``observe()`` must stay cheap (one list call however many services), so the
container summary is read as is: state from ``State``, health from the
``(healthy)`` / ``(unhealthy)`` / ``(health: starting)`` suffix of ``Status``.
The list API has no restart count; only ``inspect`` has it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from gitops_edge.adapters.docker import translate as t
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.observed import KEPT_SUFFIX, ContainerState, ObservedContainer

_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_FRACTION = re.compile(r"\.(\d+)")
_HEALTH_LOG_CHARS = 500


def health_from_status(status_text: str) -> str | None:
    """``Up 3 minutes (healthy)`` -> ``healthy``; no suffix -> None (no healthcheck)."""
    m = _HEALTH_IN_STATUS.search(status_text or "")
    if not m:
        return None
    return "starting" if m.group(1) == "health: starting" else m.group(1)


def _name(names: list[str] | None, fallback: str) -> str:
    # A container linked into others also lists "/other/alias" names: take its own.
    for n in names or ():
        bare = n.lstrip("/")
        if "/" not in bare:
            return bare
    return fallback


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def containers_digest(summaries: list[dict[str, Any]]) -> str:
    """One digest of the listed containers: any container added, removed, replaced, renamed,
    stopped, started or turning unhealthy changes it; uptime text does not.

    Only what can change while the container keeps its id goes in beside the id: its state,
    health and names. A container's image and labels are fixed when it is created (``docker
    update`` changes neither), so a container changed there by hand is a new id. That keeps
    the idle poll's digest a few string joins however many labels a service has.
    """
    rows = sorted(
        f"{s.get('Id')}\t{s.get('State')}\t{health_from_status(str(s.get('Status') or '')) or ''}"
        f"\t{','.join(sorted(s.get('Names') or ()))}"
        for s in summaries
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def observed_container(summary: dict[str, Any], restart_count: int = 0) -> ObservedContainer | None:
    """One entry of ``GET /containers/json``; None for one-off (``compose run``) containers."""
    labels: dict[str, str] = summary.get("Labels") or {}
    if labels.get(t.ONEOFF) == "True" or t.PROJECT not in labels:
        return None
    cid = summary["Id"]
    state = summary.get("State") or ""
    return ObservedContainer(
        id=cid,
        name=_name(summary.get("Names"), cid[:12]),
        stack=labels[t.PROJECT],
        service=labels.get(t.SERVICE, ""),
        number=_int(labels.get(t.NUMBER)),
        status=state,
        health=health_from_status(summary.get("Status", "")) if state == "running" else None,
        restart_count=restart_count,
        image=labels.get(t.EDGE_IMAGE),
        config_hash=labels.get(t.EDGE_CONFIG_HASH),
        revision=labels.get(t.EDGE_REVISION),
        managed=any(k.startswith(t.EDGE_PREFIX) for k in labels),
        kept=_name(summary.get("Names"), cid[:12]).endswith((KEPT_SUFFIX, FAILED_SUFFIX)),
        binds=tuple(str(m["Source"]) for m in summary.get("Mounts") or ()
                    if m.get("Type") == "bind" and m.get("Source")),
    )


def parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    if not text or text.startswith("0001-01-01"):
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text.replace("Z", "+00:00"), count=1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _failing_probe_output(health: dict[str, Any] | None) -> str:
    for entry in reversed((health or {}).get("Log") or []):
        if entry.get("ExitCode", 0) != 0:
            return str(entry.get("Output", "")).strip()[-_HEALTH_LOG_CHARS:]
    return ""


def container_state(inspect: dict[str, Any], now: datetime | None = None) -> ContainerState:
    """``GET /containers/{id}/json`` -> what the health gate needs."""
    state: dict[str, Any] = inspect.get("State") or {}
    health: dict[str, Any] | None = state.get("Health")
    status = state.get("Status", "")
    running_for = 0.0
    started = parse_time(state.get("StartedAt"))
    if status == "running" and started is not None:
        running_for = max(0.0, ((now or datetime.now(UTC)) - started).total_seconds())
    return ContainerState(
        status=status,
        health=(health or {}).get("Status") or None,
        exit_code=int(state.get("ExitCode") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(inspect.get("RestartCount") or 0),
        running_for_s=running_for,
        health_log=_failing_probe_output(health),
        name=str(inspect.get("Name") or "").lstrip("/"),
        restart_policy=_restart_policy((inspect.get("HostConfig") or {}).get("RestartPolicy") or {}),
        pre_stop=t.pre_stop_hooks((inspect.get("Config") or {}).get("Labels") or {}),
    )


def _restart_policy(policy: dict[str, Any]) -> str:
    """Docker's RestartPolicy object -> Compose's spelling (``on-failure:3``)."""
    name = policy.get("Name") or "no"
    retries = int(policy.get("MaximumRetryCount") or 0)
    return f"{name}:{retries}" if name == "on-failure" and retries else str(name)
