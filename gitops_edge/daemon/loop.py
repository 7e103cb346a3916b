"""The daemon: sync on an interval with jitter, one at a time, backoff on errors.

APScheduler drives the schedule; a failed sync reschedules the next one
with exponential backoff (capped), a good one returns to the interval. A Git
server that answers 429/503 with Retry-After is not polled sooner than it asked.
The first poll after start is spread over the whole interval
(``source.spread_start``) so a fleet restarted at once does not poll in lockstep;
it runs at once when a switch was interrupted and must be recovered.
SIGTERM/SIGINT stop the scheduler; a sync in progress is allowed to finish
its current step but the process exits within a few seconds.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from gitops_edge.core import outcome
from gitops_edge.daemon.control import ControlServer, Handler, socket_path
from gitops_edge.daemon.metrics import Metrics
from gitops_edge.daemon.status_server import StatusServer
from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import EdgeError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.result import SyncResult

if TYPE_CHECKING:
    from gitops_edge.daemon.wiring_port import DaemonWiring
    from gitops_edge.report.mqtt_status import FleetReporter

log = logging.getLogger("gitops_edge.daemon.loop")

ControlFactory = Callable[["Agent"], Handler]

BACKOFF_CAP_S = 15 * 60.0
RETRY_AFTER_CAP_S = 60 * 60.0  # a server's Retry-After is honoured up to an hour, never forever
STOP_GRACE_S = 7.0  # SIGTERM to exit stays under 10 s, as systemd and docker expect


def next_delay(
    interval_s: float, jitter_s: float, failures: int, rng: random.Random, retry_after_s: float | None = None
) -> float:
    """Seconds until the next sync: the interval (or backoff, or the server's Retry-After) plus jitter.

    ``retry_after_s`` (from a 429/503) lengthens the wait to at least that, capped at
    ``RETRY_AFTER_CAP_S``; jitter is added on top so a fleet told the same does not return together.
    """
    base = interval_s if failures == 0 else min(interval_s * (2 ** min(failures, 16)), BACKOFF_CAP_S)
    base = max(base, interval_s)
    if retry_after_s is not None:
        base = max(base, min(retry_after_s, RETRY_AFTER_CAP_S))
    return base + rng.uniform(0, jitter_s)


def first_delay(interval_s: float, spread_start: bool, recovery_pending: bool, rng: random.Random) -> float:
    """Seconds from start to the first sync: anywhere in one interval, or now when recovering."""
    if not spread_start or recovery_pending:
        return 0.0
    return rng.uniform(0, interval_s)


class Agent:
    """``wiring`` builds what a sync needs (``gitops_edge.wiring.Wiring`` in production)."""

    def __init__(self, config: AgentConfig, wiring: DaemonWiring, control: ControlFactory | None = None) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.config = config
        self.wiring = wiring
        self.control = control  # builds the control socket's command handler (the CLI's), or None
        self.stop_event = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.failures = 0
        self.retry_after_s: float | None = None  # from the last sync's 429/503, if the server said
        self.rng = random.Random()
        self.scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True})
        self.metrics = Metrics()
        self.synced_once = threading.Event()
        self.last_tick = time.monotonic()
        self.reporter: FleetReporter | None = None  # MQTT fleet status, when configured
        # A commit that failed permanently (invalid, refused): no retry until the ref moves.
        self.parked: str | None = None

    def _sync_once(self) -> None:
        """The scheduled cycle: sync (unless parked), then schedule the next one."""
        self._sync()
        self._schedule()

    def sync_now(self, progress: logging.Handler | None = None) -> SyncResult | None:
        """A sync asked for by hand (``gitops-edge sync`` through the control socket).

        Runs at once on the caller's thread (after a scheduled sync in progress ends),
        even for a parked commit, and streams this thread's log records to ``progress``;
        the next scheduled sync is counted from now.
        """
        root = logging.getLogger("gitops_edge")
        if progress is not None:
            me = threading.get_ident()
            progress.addFilter(lambda record: record.thread == me)
            root.addHandler(progress)
        try:
            return self._sync(force=True)
        finally:
            if progress is not None:
                root.removeHandler(progress)
            self._schedule()

    def _sync(self, force: bool = False) -> SyncResult | None:
        if self.stop_event.is_set():
            return None
        self.idle.clear()
        self.last_tick = time.monotonic()
        result = None
        try:
            with self.wiring.sync_lock():
                store = self.wiring.open_store()
                try:
                    started = time.monotonic()
                    rec = self.wiring.reconciler(store, keep_runtime=True)
                    result = rec.sync() if force or not self._still_parked(rec) else None
                    if result is not None:
                        self.parked = result.revision if outcome.is_permanent(result) else None
                        self.metrics.observe(result, time.monotonic() - started, store)
                        self.wiring.report(store, result, self.reporter)
                finally:
                    store.close()
            if result is not None:
                self.failures = self.failures + 1 if outcome.counts_as_failure(result) else 0
                self.retry_after_s = outcome.retry_after_s(result)
            self.synced_once.set()
        except Exception:  # the daemon must outlive a bug in one sync
            log.exception("sync crashed")
            self.failures += 1
            self.retry_after_s = None
        finally:
            self.idle.set()
        return result

    def _still_parked(self, rec: Reconciler) -> bool:
        """True when the ref still points at the commit that failed permanently (one ls-remote)."""
        if self.parked is None:
            return False
        try:
            moved = rec.source.remote_revision() != self.parked
        except EdgeError:
            return False  # let the full sync report it
        if moved:
            self.parked = None
            return False
        log.debug("ref still at %s, which cannot be applied; waiting for a new commit", self.parked[:12])
        return True

    def _schedule(self, first: bool = False) -> None:
        if self.stop_event.is_set():
            return
        src = self.config.source
        if first:
            delay = first_delay(src.interval_s, src.spread_start, self._recovery_pending(), self.rng)
            if delay:
                log.info("first sync in %.0fs (spread over the interval)", delay)
        else:
            delay = next_delay(src.interval_s, src.jitter_s, self.failures, self.rng, self.retry_after_s)
        if self.failures:
            log.info("next sync in %.0fs (backoff after %d failures)", delay, self.failures)
        self.scheduler.add_job(
            self._sync_once, "date", run_date=datetime.now() + timedelta(seconds=delay), id="sync",
            replace_existing=True, misfire_grace_time=None,
        )

    def _recovery_pending(self) -> bool:
        """A switch was interrupted (journal not empty), or the store cannot tell: sync now."""
        try:
            store = self.wiring.open_store()
        except EdgeError:
            return True  # the first sync reports the problem; no reason to wait for it
        try:
            return bool(store.journal())
        except EdgeError:
            return True
        finally:
            store.close()

    def run(self) -> int:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server = self._status_server()
        control = self._control_server()
        self.reporter = self.wiring.fleet_reporter()
        if self.reporter is not None:
            self.reporter.start()
        self.scheduler.start()
        self._schedule(first=True)
        log.info("gitops-edge running: device %s, every %.0fs", self.config.device.id, self.config.source.interval_s)
        self.stop_event.wait()
        self.scheduler.shutdown(wait=False)
        if server is not None:
            server.stop()
        if control is not None:
            control.stop()
        if self.reporter is not None:
            self.reporter.stop()
        if not self.idle.wait(STOP_GRACE_S):
            # The journal makes this safe: the next start finishes or undoes the switch.
            log.warning("a sync is still running; stopping anyway, the next start recovers it")
            logging.shutdown()
            os._exit(0)
        log.info("stopped")
        return 0


    def healthy(self) -> bool:
        """Alive: the scheduler runs and no sync has been stuck far beyond its bounds."""
        stuck_after = self.config.source.timeout_s * 3 + self.config.health.timeout_s * 2 + 60
        busy_too_long = not self.idle.is_set() and time.monotonic() - self.last_tick > stuck_after
        return bool(self.scheduler.running) and not busy_too_long

    def _control_server(self) -> ControlServer | None:
        if self.control is None:
            return None
        server = ControlServer(socket_path(self.config.state_dir), self.control(self))
        try:
            server.start()
        except OSError as exc:  # the CLI then works standalone, as without a daemon
            log.warning("no control socket at %s: %s", server.path, exc)
            return None
        return server

    def _status_server(self) -> StatusServer | None:
        if not self.config.status.listen:
            return None
        from gitops_edge.report.status_view import DeviceStatus, device_status

        def status() -> DeviceStatus:
            store = self.wiring.open_store()
            try:
                return device_status(self.config, store, self.wiring.runtime_or_none(timeout=10)[0])
            finally:
                store.close()

        server = StatusServer(
            self.config.status.listen,
            healthy=self.healthy,
            ready=self.synced_once.is_set,
            status=status,
            metrics=self.metrics.exposition,
        )
        server.start()
        host = self.config.status.listen.rpartition(":")[0]
        log.info("status on http://%s:%d/ (healthz, readyz, status, metrics)", host, server.port)
        return server


def run_daemon(config: AgentConfig, wiring: DaemonWiring, control: ControlFactory | None = None) -> int:
    return Agent(config, wiring, control).run()
