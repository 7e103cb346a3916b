"""Refuse, with ``file:line: key``, a service whose replica count the engine cannot run yet.

The loader reads ``deploy.replicas`` and ``scale`` exactly as Compose does
(so ``validate`` and the Compose comparison see the real file), but the
planner, the switch and the observer still handle one container per service.
A stack asking for another count is refused here, before anything on the
device changes, as an invalid desired state of that stack only.
"""

from __future__ import annotations

from pathlib import Path

from gitops_edge.core.compose.problems import line_of
from gitops_edge.engine.security_gate import KeyLines
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.spec import DesiredState, StackSpec


def replica_refusals(desired: DesiredState, root: Path, lines: KeyLines | None = None) -> dict[str, DesiredStateError]:
    """Per stack with a service whose replica count is not 1: the error naming its first such key."""
    out: dict[str, DesiredStateError] = {}
    for st in desired.stacks:
        odd = [svc for svc in st.services if svc.replicas != 1]
        if odd:
            out[st.name] = _refusal(st, odd[0].name, odd[0].replicas, root, lines)
    return out


def _refusal(st: StackSpec, service: str, replicas: int, root: Path, lines: KeyLines | None) -> DesiredStateError:
    where = lines(root, st.compose_file) if lines is not None else {}
    path: tuple[str | int, ...] = ("services", service, "deploy", "replicas")
    if path not in where and ("services", service, "scale") in where:
        path = ("services", service, "scale")
    key = ".".join(str(k) for k in path)
    return DesiredStateError(
        f"{replicas} replicas: gitops-edge runs exactly one container per service (set 1 or remove it)",
        Location(st.compose_file, line_of(where, path), key),
    )
