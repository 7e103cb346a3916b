"""What the daemon needs from the composition root (``gitops_edge.wiring.Wiring``).

A port, so the daemon never constructs an adapter itself and tests can hand it
something smaller.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from gitops_edge.errors import EdgeError
from gitops_edge.model.result import SyncResult
from gitops_edge.ports.runtime import ContainerRuntime

if TYPE_CHECKING:
    from gitops_edge.adapters.store.sqlite import StateStore
    from gitops_edge.engine.reconcile import Reconciler
    from gitops_edge.report.mqtt_status import FleetReporter, HintCallback


class DaemonWiring(Protocol):
    def open_store(self) -> StateStore: ...

    def reconciler(self, store: StateStore, *, keep_runtime: bool = False,
                   refresh_saved_memo: bool = True) -> Reconciler: ...

    def runtime_or_none(self, timeout: float | None = None) -> tuple[ContainerRuntime | None, EdgeError | None]: ...

    def fleet_reporter(self, *, daemon: bool = True, on_hint: HintCallback | None = None) -> FleetReporter | None: ...

    def report(self, store: StateStore, result: SyncResult, reporter: FleetReporter | None = None) -> None: ...

    def sync_lock(self) -> AbstractContextManager[None]: ...
