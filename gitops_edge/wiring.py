"""Build a reconciler from the agent config: the one place adapters meet.

Imports are deferred so commands that need no Docker or Git (``validate``,
``history``) start fast and work on a machine without an engine.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_edge.adapters.state_store import StateStore
from gitops_edge.errors import ConfigError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.spec import DesiredState
from gitops_edge.reconciler import Reconciler, SyncResult
from gitops_edge.verify import ImagePolicy, VerdictCache

if TYPE_CHECKING:
    from gitops_edge.metrics import Metrics
    from gitops_edge.mqtt_status import FleetReporter
    from gitops_edge.ports import ContainerRuntime


def open_store(config: AgentConfig) -> StateStore:
    return StateStore(config.state_dir)


def build_reconciler(config: AgentConfig, store: StateStore, runtime: ContainerRuntime | None = None) -> Reconciler:
    """``runtime``: one the caller keeps across syncs (the daemon), else a new ``DockerRuntime``."""
    from gitops_edge.adapters.desired_state import load_desired_state
    from gitops_edge.adapters.git_source import GitRepoSource

    source = GitRepoSource(config.source, config.state_dir / "source")
    if runtime is None:
        from gitops_edge.adapters.docker_runtime import DockerRuntime

        runtime = DockerRuntime()

    def loader(root: Path, subpath: str, revision: str) -> DesiredState:
        return load_desired_state(root, subpath, revision, device=config.device)  # fleet.yaml targets by identity

    return Reconciler(config, source, runtime, store, loader=loader, image_policy=build_image_policy(config, store))


def build_image_policy(config: AgentConfig, store: StateStore | None) -> ImagePolicy | None:
    """None without a ``trust`` section: images then run unverified, and status says so."""
    if config.trust is None:
        return None
    from gitops_edge.adapters.signatures import SignatureVerifier

    cache = VerdictCache(store.get, store.put) if store is not None else None
    return ImagePolicy(config.trust, SignatureVerifier(config.registries), cache)


@contextmanager
def sync_lock(state_dir: Path) -> Iterator[None]:
    """One sync at a time per device, across the daemon and the command line."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / "sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot use state_dir {state_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def after_sync(
    config: AgentConfig,
    store: StateStore,
    result: SyncResult,
    duration_s: float,
    metrics: Metrics | None = None,
    reporter: FleetReporter | None = None,
) -> None:
    """Report a finished sync: metrics (daemon), webhook notifications and MQTT fleet status (both).

    MQTT: the event is queued in the store; the daemon's ``reporter`` sends it on its own
    thread, a one-shot ``sync`` (no reporter) tries the broker briefly itself.
    """
    from gitops_edge.errors import RegistryError, SourceError
    from gitops_edge.notify import Notifier

    err = result.error
    reached = not (isinstance(err, SourceError) and not isinstance(err, RegistryError))
    if metrics is not None:
        metrics.observe(result.outcome, duration_s, reached, store)
    Notifier(config.notify, store, config.device.id).after_sync(result.outcome, result.revision, result.reason)
    if config.mqtt is not None:
        from gitops_edge.mqtt_status import publish_once, record_sync

        record_sync(config, store, result)
        if reporter is not None:
            reporter.wake()
        else:
            publish_once(config)
