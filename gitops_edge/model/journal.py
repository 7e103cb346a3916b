"""The journal of a switch in progress: enough to finish or undo it after a crash.

Written to the state store before every irreversible step of ``engine.switch``
and read back by ``engine.recovery``. Records are frozen; a switch saves a new
one (``dataclasses.replace``) for every change. ``to_data``/``from_data`` are
the stored form (the ``data`` column, plain JSON); its keys are the ones agents
have always written, so a journal left by an older agent still recovers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum


class Phase(StrEnum):
    SWITCHING = "switching"  # old containers being kept, new ones created, started and gated
    COMMITTING = "committing"  # the new version passed the gate: only dropping the kept ones is left
    ROLLING_BACK = "rolling-back"  # the new containers go, the kept ones come back


@dataclass(frozen=True)
class KeptContainer:
    """An old container held for rollback, and how to restore it."""

    id: str
    name: str  # its name before it was renamed with KEPT_SUFFIX
    service: str
    restart: str  # its restart policy before it was turned off
    was_running: bool
    running: bool = False  # start-first: still serving until the new one passes the gate

    def to_data(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "service": self.service,
            "restart": self.restart,
            "was_running": self.was_running,
        }
        if self.running:
            out["running"] = True
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> KeptContainer:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            service=str(data.get("service", "")),
            restart=str(data.get("restart") or "no"),
            was_running=bool(data.get("was_running", False)),
            running=bool(data.get("running", False)),
        )


@dataclass(frozen=True)
class Journal:
    """What a switch of ``stack`` to ``revision`` has done so far."""

    stack: str
    revision: str
    phase: Phase = Phase.SWITCHING
    kept: tuple[KeptContainer, ...] = ()
    created: tuple[str, ...] = ()  # ids of new containers, in creation order
    failure: str = ""  # why the new version was refused; empty when it was not its fault
    creating: tuple[str, ...] | None = None  # what this switch creates containers for (None: unknown):
    # ``service:number`` per replica; a bare ``service`` (older agents) stands for all its replicas

    def creates(self, service: str, number: int) -> bool:
        """Does this switch create a container for replica ``number`` of ``service``?"""
        return self.creating is None or service in self.creating or f"{service}:{number}" in self.creating

    def keep(self, entry: KeptContainer) -> Journal:
        return replace(self, kept=(*self.kept, entry))

    def create(self, container_id: str) -> Journal:
        return replace(self, created=(*self.created, container_id))

    def stopped(self, container_id: str) -> Journal:
        """A start-first kept container is stopped now."""
        return replace(self, kept=tuple(replace(k, running=False) if k.id == container_id else k for k in self.kept))

    def to_data(self) -> dict[str, object]:
        """The stored ``data``; stack, revision and phase are stored beside it."""
        out: dict[str, object] = {"kept": [k.to_data() for k in self.kept], "created": list(self.created)}
        if self.creating is not None:
            out["creating"] = list(self.creating)
        if self.failure:
            out["failure"] = self.failure
        return out

    @classmethod
    def from_data(cls, stack: str, revision: str, phase: str, data: Mapping[str, object]) -> Journal:
        creating = data.get("creating")
        return cls(
            stack=stack,
            revision=revision,
            phase=Phase(phase),
            kept=tuple(KeptContainer.from_data(k) for k in _list(data.get("kept")) if isinstance(k, Mapping)),
            created=tuple(str(c) for c in _list(data.get("created"))),
            failure=str(data.get("failure") or ""),
            creating=tuple(str(s) for s in _list(creating)) if creating is not None else None,
        )


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []
