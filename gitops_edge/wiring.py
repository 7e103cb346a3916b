"""The composition root: the one place adapters are constructed and joined to the engine.

Everything above (the command line, the daemon) asks a ``Wiring`` for what it
needs; nothing below builds a Docker client, a Git source, a registry client,
an MQTT link or a state store by itself. Adapter imports are deferred so that
commands which need no Docker or Git (``validate``, ``history``) start fast and
work on a machine without an engine.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_edge.errors import ConfigError, EdgeError
from gitops_edge.model.config import AgentConfig

if TYPE_CHECKING:
    from gitops_edge.adapters.store.sqlite import StateStore
    from gitops_edge.engine.image_policy import ImagePolicy
    from gitops_edge.engine.reconcile import Reconciler
    from gitops_edge.model.result import SyncResult
    from gitops_edge.model.spec import DesiredState
    from gitops_edge.ports.runtime import ContainerRuntime
    from gitops_edge.report.mqtt_status import FleetReporter, HintCallback


class Wiring:
    """Builds the adapters for one device config; the daemon keeps one for its whole life."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._runtime: ContainerRuntime | None = None
        self._reporter_store: StateStore | None = None

    # -- adapters ------------------------------------------------------------------------
    def open_store(self) -> StateStore:
        from gitops_edge.adapters.store.sqlite import StateStore

        return self._store(StateStore)

    def runtime(self) -> ContainerRuntime:
        """One engine client, kept across syncs: no reconnect per poll."""
        if self._runtime is None:
            self._runtime = self.new_runtime()
        return self._runtime

    def new_runtime(self, timeout: float | None = None) -> ContainerRuntime:
        from gitops_edge.adapters.docker.runtime import DockerRuntime

        return DockerRuntime() if timeout is None else DockerRuntime(timeout=timeout)

    def runtime_or_none(self, timeout: float | None = None) -> tuple[ContainerRuntime | None, EdgeError | None]:
        """A fresh engine client for a status read, or the reason there is none."""
        try:
            return self.new_runtime(timeout), None
        except EdgeError as exc:
            return None, exc

    def quick_sync(self, store: StateStore) -> SyncResult | None:
        """A one-shot process's idle short-circuit (``engine.idle.quick_sync``): the last full
        sync's answer when nothing it was based on moved, else None. Builds no reconciler, so a
        no-change ``sync`` imports neither the Compose loader nor the planner."""
        from gitops_edge.adapters.files.device_key import device_key
        from gitops_edge.adapters.git.source import GitRepoSource
        from gitops_edge.engine.idle import quick_sync

        config = self.config
        try:
            source = GitRepoSource(config.source, config.state_dir / "source")
            return quick_sync(store, source, self.new_runtime(), lambda: device_key(config), time.time(),
                              config.retention.full_check_s)
        except EdgeError:
            return None  # the full sync meets it again, and records and reports it as a sync does

    def reconciler(self, store: StateStore, *, keep_runtime: bool = False,
                   refresh_saved_memo: bool = True) -> Reconciler:
        """``keep_runtime``: the daemon's: reuse this wiring's engine client (else a new one), and
        retire the containers a commit replaced in the background (``StackSwitch.settle``).
        ``refresh_saved_memo``: see ``Reconciler`` (False for the daemon: an idle daemon writes nothing)."""
        from gitops_edge.adapters.files.desired_state import load_desired_state
        from gitops_edge.adapters.files.device_key import device_key
        from gitops_edge.adapters.files.revision_tree import RevisionTrees, TreeRootSource
        from gitops_edge.adapters.git.source import GitRepoSource
        from gitops_edge.core.compose import StackErrors
        from gitops_edge.engine.reconcile import Reconciler

        config = self.config
        trees = RevisionTrees(config.state_dir / "trees")
        # the engine sees the revision's tree directory as the checkout root: containers never see the clone
        source = TreeRootSource(GitRepoSource(config.source, config.state_dir / "source"), trees)
        runtime = self.runtime() if keep_runtime else self.new_runtime()

        def loader(root: Path, subpath: str, revision: str) -> DesiredState:
            # read (and confine) the files in the clone, then bind every repository path from the tree
            clone = source.clone_of(root)
            try:
                desired = load_desired_state(clone, subpath, revision, device=config.device)  # fleet.yaml: by identity
            except StackErrors as exc:
                if exc.partial is None:
                    raise
                # the valid stacks go on, and they too bind from the tree, never the clone
                raise StackErrors(exc.errors, partial=trees.materialize_state(exc.partial, clone),
                                  by_stack=exc.by_stack) from None
            return trees.materialize_state(desired, clone)

        def key_lines(root: Path, compose_file: str) -> dict[tuple[str | int, ...], int]:
            return compose_key_lines(source.clone_of(root), compose_file)  # the compose file is read in the clone

        def collect_trees() -> None:
            """After each sync: drop the trees no container, applied or good revision needs."""
            containers = runtime.observe().containers  # first: if the engine cannot answer, nothing goes
            applied = {name: a.revision for name, a in store.applied().items()}
            good = {name: [g[0] for g in store.good_revisions(name)] for name in set(applied) | trees.stacks_on_disk()}
            trees.collect(trees.users(containers, applied, good, rec.revision_seen))

        from gitops_edge.adapters.registry.sizes import RegistrySizes

        registry = RegistrySizes(config.registries)  # layer sizes and platform manifests; requests on first use
        rec = Reconciler(config, source, runtime, store, loader=loader, image_policy=self.image_policy(store),
                         after_sync=collect_trees, key_lines=key_lines, platforms=registry, sizes=registry,
                         device_key=lambda: device_key(config), refresh_saved_memo=refresh_saved_memo)
        rec.switch.retire_in_background = keep_runtime
        return rec

    def image_policy(self, store: StateStore | None) -> ImagePolicy | None:
        """None without a ``trust`` section: images then run unverified, and status says so."""
        if self.config.trust is None:
            return None
        from gitops_edge.adapters.registry.signatures import SignatureVerifier
        from gitops_edge.engine.image_policy import ImagePolicy, VerdictCache

        cache = VerdictCache(store.get, store.put) if store is not None else None
        return ImagePolicy(self.config.trust, SignatureVerifier(self.config.registries), cache)

    def fleet_reporter(self, *, daemon: bool = True, on_hint: HintCallback | None = None) -> FleetReporter | None:
        """The MQTT publisher of this device, None without an ``mqtt`` section.

        ``on_hint(revision, origin)`` (the daemon's): called when the ref's retained
        push-hint topic names a commit; None: no subscription.
        """
        if self.config.mqtt is None:
            return None
        from gitops_edge.adapters.mqtt.link import MqttLink
        from gitops_edge.report.mqtt_status import FleetReporter, client_id, will_for

        mqtt = self.config.mqtt
        link = MqttLink(mqtt, client_id(self.config, daemon), will=will_for(self.config, daemon), on_connect=None)
        return FleetReporter(self.config, link, self._kept_store if daemon else self.open_store,
                             self._status_runtime, daemon=daemon, on_hint=on_hint)

    def _kept_store(self) -> StateStore:
        """The daemon's reporter thread reuses one connection: opening a new one every
        30 s dirtied SQLite's shared-memory pages, a write to storage each time."""
        if self._reporter_store is None:
            from gitops_edge.adapters.store.sqlite import StateStore

            class _Kept(StateStore):
                def close(self) -> None:  # kept open for the daemon's life
                    pass

            self._reporter_store = self._store(_Kept)
        return self._reporter_store

    def _store(self, cls: type[StateStore]) -> StateStore:
        keep = self.config.retention
        return cls(self.config.state_dir, history_keep=keep.history, history_days=keep.history_days,
                   keep_revisions=keep.rollback_revisions)

    def _status_runtime(self) -> ContainerRuntime | None:
        return self.runtime_or_none(timeout=10)[0]

    # -- reporting -----------------------------------------------------------------------
    def report(self, store: StateStore, result: SyncResult, reporter: FleetReporter | None = None) -> None:
        """Report a finished sync: webhook notifications and MQTT fleet status.

        MQTT: the event is queued in the store; the daemon's ``reporter`` sends it on its own
        thread, a one-shot ``sync`` (no reporter) tries the broker briefly itself.
        """
        config = self.config
        if config.notify.webhook:  # (without one the notifier has nothing to do: not even imported)
            from gitops_edge.report.webhook import Notifier

            Notifier(config.notify, store, config.device.id).after_sync(
                result.outcome, result.revision, result.reason, result.evidence)
        if config.mqtt is not None:
            from gitops_edge.report.mqtt_status import publish_once, record_sync

            record_sync(config, store, result)
            if reporter is not None:
                reporter.wake()
            else:
                oneshot = self.fleet_reporter(daemon=False)
                if oneshot is not None:
                    publish_once(oneshot)

    # -- one sync at a time ----------------------------------------------------------------
    @contextmanager
    def sync_lock(self) -> Iterator[None]:
        with sync_lock(self.config.state_dir):
            yield


def compose_key_lines(root: Path, compose_file: str) -> dict[tuple[str | int, ...], int]:
    """The key-path-to-line map of a compose file the loader read a moment ago (for located refusals)."""
    from gitops_edge.adapters.files.yaml_reader import read_yaml_file

    try:
        return read_yaml_file(root / compose_file, compose_file).lines
    except (EdgeError, OSError):
        return {}  # without lines the key path still says where


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
