"""Fleet status over MQTT, the pure parts: topics, payloads, the fleet table.

A device publishes a retained status (``<prefix>/<device>/status``), events
(``<prefix>/<device>/events``, QoS 1, not retained) and its online flag
(``<prefix>/<device>/online``, retained "true"/"false", "false" is the Last Will).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SCHEMA = 1
_OUTCOME_EVENT = {"applied": "applied", "rolled_back": "rollback", "refused": "refusal"}
_FINE = ("healthy", "running")


def topic(prefix: str, device: str, leaf: str) -> str:
    """``<prefix>/<device>/<leaf>``; the device id's own '/', '+', '#' become '_'."""
    safe = "".join("_" if c in "/+#" else c for c in device) or "_"
    return f"{prefix}/{safe}/{leaf}"


def status_payload(
    status: Mapping[str, Any], labels: Mapping[str, str], version: str, now: float
) -> dict[str, Any]:
    """The retained status message, from ``status.device_status``'s dict."""
    stacks: dict[str, Any] = {}
    quarantined = []
    for st in status.get("stacks", []):
        health = {s["service"]: s["health"] for s in st.get("services", [])}
        stacks[st["stack"]] = {
            "revision": st.get("revision"),
            "ready": st.get("ready"),
            "reason": st.get("reason"),
            "message": st.get("message"),
            "health": health,
            "suspended": st.get("suspended"),
            "automation_stopped": st.get("automation_stopped"),
        }
        if st.get("quarantined"):
            quarantined.append({"stack": st["stack"], **st["quarantined"]})
    last = status.get("last_sync")
    return {
        "schema": SCHEMA,
        "device": status.get("device"),
        "labels": dict(labels),
        "agent_version": version,
        "published_at": round(now, 3),
        "source": status.get("source"),
        "trust": status.get("trust"),
        "engine_error": status.get("engine_error"),
        "lock": status.get("lock"),
        "last_sync": None
        if last is None
        else {k: last.get(k) for k in ("outcome", "revision", "reason", "at")},
        "stacks": stacks,
        "quarantined": quarantined,
    }


def status_digest(payload: Mapping[str, Any]) -> str:
    """What a status says, without when it was said: equal digests need no new retained message.

    Volatile fields (``published_at``, ``last_sync.at``) are left out, so a quiet device's
    no-change polls publish nothing; the heartbeat refreshes them now and then.
    """
    stable = {k: v for k, v in payload.items() if k != "published_at"}
    last = stable.get("last_sync")
    if isinstance(last, Mapping):
        stable["last_sync"] = {k: v for k, v in last.items() if k != "at"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def event_for(outcome: str) -> str | None:
    """The event kind a sync outcome is reported as, if any (applied, rollback, refusal)."""
    return _OUTCOME_EVENT.get(outcome)


def event_payload(
    kind: str, device: str, revision: str | None, reason: str, actions: list[str], now: float
) -> dict[str, Any]:
    """One event; ``id`` lets a consumer drop the duplicates QoS 1 may deliver."""
    ident = hashlib.sha256(f"{device}\0{kind}\0{revision}\0{now}".encode()).hexdigest()[:16]
    return {
        "schema": SCHEMA,
        "id": ident,
        "event": kind,
        "device": device,
        "revision": revision,
        "reason": reason,
        "actions": list(actions),
        "at": round(now, 3),
    }


def refusal_fingerprint(revision: str | None, reason: str) -> str:
    """A refusal repeats on every poll of the same commit; it is one event until it changes."""
    return hashlib.sha256(f"{revision}\0{reason}".encode()).hexdigest()


# -- the fleet view (``gitops-edge fleet status``) ---------------------------------------


def collect(messages: Mapping[str, bytes], prefix: str) -> list[dict[str, Any]]:
    """topic -> retained payload, into one entry per device: {device, online, status}."""
    devices: dict[str, dict[str, Any]] = {}
    for t, raw in messages.items():
        if not t.startswith(prefix + "/"):
            continue
        parts = t[len(prefix) + 1 :].split("/")
        if len(parts) != 2 or parts[1] not in ("status", "online"):
            continue
        entry = devices.setdefault(parts[0], {"device": parts[0], "online": None, "status": None})
        text = raw.decode("utf-8", "replace").strip()
        if parts[1] == "online":
            entry["online"] = {"true": True, "false": False}.get(text)
        else:
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = None
            entry["status"] = data if isinstance(data, dict) else None
    return [devices[k] for k in sorted(devices)]


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def health_summary(status: Mapping[str, Any] | None) -> str:
    """``all healthy`` only when every stack is ready (``core.conditions``) and every service fine;
    else what is not: ``web: RolledBack`` per not-ready stack, or how many services are unhealthy."""
    if not status:
        return "-"
    stacks = status.get("stacks", {})
    not_ready = [f"{name}: {st.get('reason') or 'NotReady'}" for name, st in sorted(stacks.items())
                 if st.get("ready") not in (None, "True")]
    states = [h for st in stacks.values() for h in st.get("health", {}).values()]
    bad = sum(1 for h in states if h not in _FINE)
    if not_ready:
        return ", ".join(not_ready)
    if not states:
        return "no services"
    return "all healthy" if bad == 0 else f"{bad} unhealthy"


def fleet_rows(entries: list[dict[str, Any]], now: float) -> list[tuple[str, ...]]:
    """Table rows (header first): DEVICE ONLINE REVISION HEALTH LAST SYNC."""
    rows: list[tuple[str, ...]] = [("DEVICE", "ONLINE", "REVISION", "HEALTH", "LAST SYNC")]
    for e in entries:
        st = e.get("status") or {}
        online = {True: "yes", False: "no", None: "?"}[e.get("online")]
        revs = " ".join(
            f"{name}@{(s.get('revision') or '-')[:7]}" for name, s in sorted(st.get("stacks", {}).items())
        )
        last = st.get("last_sync")
        since = (
            f"{_age(now - float(last['at']))} ago {last.get('outcome')}"
            if isinstance(last, dict) and isinstance(last.get("at"), int | float)
            else "-"
        )
        rows.append((e["device"], online, revs or "-", health_summary(st), since))
    return rows
