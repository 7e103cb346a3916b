"""The daemon: sync on an interval with jitter, one at a time, backoff on errors.

APScheduler drives the schedule; a failed sync reschedules the next one
with exponential backoff (capped at 15 min; a longer interval is retried sooner,
from 1 min up to the cap), a good one returns to the interval. A Git
server that answers 429/503 with Retry-After is not polled sooner than it asked.
The first poll after start is spread over the whole interval
(``source.spread_start``) so a fleet restarted at once does not poll in lockstep;
it runs at once when a switch was interrupted and must be recovered.
SIGTERM/SIGINT stop the scheduler; a sync in progress is allowed to finish
its current step but the process exits within a few seconds.

One state store and one reconciler live across polls (closing the last SQLite
connection checkpoints the WAL: a write per poll), so the reconciler's idle
memo (``engine.idle``) lets a poll where nothing moved end after one ls-remote
and one container list, writing nothing; unchanged polls are counted in memory
(``/status``, ``/metrics``), not in the history.

A push hint (the ref's retained MQTT topic, or a signed Git-server webhook) moves
the next sync to "now + a random spread" (``Agent.hint``); it is only a hint,
so the sync it starts is the full one, and hinted syncs are rate-limited.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from gitops_edge.core import outcome
from gitops_edge.core.push import HintGate
from gitops_edge.daemon.control import ControlServer, Handler, socket_path
from gitops_edge.daemon.metrics import Metrics
from gitops_edge.daemon.pushgateway import push_metrics
from gitops_edge.daemon.status_server import PushWebhook, StatusServer
from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import EdgeError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.result import SyncResult

if TYPE_CHECKING:
    from gitops_edge.adapters.store.sqlite import StateStore
    from gitops_edge.daemon.wiring_port import DaemonWiring
    from gitops_edge.model.condition import StackCondition
    from gitops_edge.report.mqtt_status import FleetReporter

log = logging.getLogger("gitops_edge.daemon.loop")

ControlFactory = Callable[["Agent"], Handler]

BACKOFF_CAP_S = 15 * 60.0
LONG_INTERVAL_RETRY_S = 60.0  # first retry after a failure when the interval is longer than the cap
RETRY_AFTER_CAP_S = 60 * 60.0  # a server's Retry-After is honoured up to an hour, never forever
STOP_GRACE_S = 7.0  # SIGTERM to exit stays under 10 s, as systemd and docker expect


def next_delay(
    interval_s: float, jitter_s: float, failures: int, rng: random.Random, retry_after_s: float | None = None
) -> float:
    """Seconds until the next sync: the interval (or backoff, or the server's Retry-After) plus jitter.

    Backoff doubles from the interval up to ``BACKOFF_CAP_S``. An interval longer than the cap
    (a fleet woken by push hints polls hourly) would leave a device whose sync failed on the old
    commit for that long, so there the retries start at ``LONG_INTERVAL_RETRY_S`` and double to the
    cap instead: at most one retry per cap while a failure lasts.

    ``retry_after_s`` (from a 429/503) lengthens the wait to at least that, capped at
    ``RETRY_AFTER_CAP_S``; jitter is added on top so a fleet told the same does not return together.
    """
    if failures == 0:
        base = interval_s
    elif interval_s <= BACKOFF_CAP_S:  # doubles from the interval: a short interval is not hammered
        base = min(interval_s * (2 ** min(failures, 16)), BACKOFF_CAP_S)
    else:  # a long (push-driven) interval: a transient failure is retried sooner, backing off to the cap
        base = min(LONG_INTERVAL_RETRY_S * (2 ** min(failures - 1, 16)), BACKOFF_CAP_S)
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
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            # its four INFO lines per job run would be the only write of an idle poll (journald, flash)
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True})
        self.metrics = Metrics(self._conditions)
        self.synced_once = threading.Event()
        self.last_tick = time.monotonic()
        self.reporter: FleetReporter | None = None  # MQTT fleet status, when configured
        # A commit that failed permanently (invalid, refused): no retry until the ref moves.
        self.parked: str | None = None
        # Push hints: the gate rate-limits them; a hint during a sync is served right after it.
        src = config.source
        self.hints = HintGate(src.hint_spread_s, src.hint_min_gap_s)
        self.seen: frozenset[str] = frozenset()  # the commit the last sync found at the ref
        self._hint_lock = threading.Lock()
        self._busy = 0  # syncs running or about to (scheduled and by hand)
        self._started = False  # hints before the first schedule wait for it (it would replace them)
        self._deferred: tuple[str | None, str] | None = None  # (revision, origin) heard during a sync
        self._store: StateStore | None = None  # kept open across polls
        self._rec: Reconciler | None = None  # kept across polls: its idle memo
        self._reader: StateStore | None = None  # /status and /metrics (``_reading``)
        self._read_lock = threading.Lock()

    def _reconciler(self) -> tuple[StateStore, Reconciler]:
        """The kept store and reconciler, built on first use or after a crash dropped them."""
        if self._store is None or self._rec is None:
            self._drop()
            self._store = self.wiring.open_store()
            self._rec = self.wiring.reconciler(self._store, keep_runtime=True, refresh_saved_memo=False)
        return self._store, self._rec

    def _drop(self) -> None:
        if self._rec is not None:
            try:
                self._rec.switch.settle()
            except Exception:  # the journal stays: the next start finishes the commit
                log.warning("could not finish removing the replaced containers; the next sync does")
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                pass
        self._store = self._rec = None

    def unchanged_polls(self) -> tuple[int, float | None]:
        """(count since start, wall time of the last) of syncs that changed nothing."""
        rec = self._rec
        return (rec.idle.unchanged_polls, rec.idle.last_unchanged_at) if rec is not None else (0, None)

    def _sync_once(self) -> None:
        """The scheduled cycle: sync (unless parked), then schedule the next one."""
        with self._hint_lock:
            if self._busy:  # a hinted run raced one in progress: serve it after that one
                self._deferred = self._deferred or (None, "overlap")
                return
            self._busy += 1
            self.hints.started()
        result = None
        try:
            result = self._sync()
            self._schedule()
        finally:
            self._finish(result)

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
        with self._hint_lock:
            self._busy += 1
            self.hints.started()
        result = None
        try:
            result = self._sync(force=True)
            return result
        finally:
            if progress is not None:
                root.removeHandler(progress)
            self._schedule()
            self._finish(result)

    def _finish(self, result: SyncResult | None) -> None:
        """After a sync and its next schedule: serve a hint heard meanwhile, push the metrics."""
        with self._hint_lock:
            self._busy -= 1
            deferred = None
            if not self._busy:
                deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self.hint(*deferred)
        gateway = self.config.metrics.pushgateway
        if gateway and result is not None:  # after scheduling: a slow gateway delays no sync
            push_metrics(self.metrics.registry, gateway, self.config.device.id, self.config.metrics.timeout_s)

    def hint(self, revision: str | None, origin: str) -> None:
        """The ref may have moved to ``revision`` (None: unknown): sync within the spread.

        Called from the MQTT and HTTP threads; never blocks on a sync. Nothing is
        trusted: the sync it starts checks everything it always checks.
        """
        if self.stop_event.is_set():
            return
        with self._hint_lock:
            if self._busy or not self._started:
                self._deferred = (revision, origin)
                return
            seen = self.seen or self._applied_revisions()
            now = time.monotonic()
            at = self.hints.offer(revision, seen, now, self.rng.random())
            if at is None:
                log.debug("push hint (%s) %s: nothing to do", origin, (revision or "?")[:12])
                return
            delay = at - now
            sooner = self._next_run_in()
            if sooner is not None and sooner <= delay:
                log.debug("push hint (%s): the next sync is due in %.1fs anyway", origin, sooner)
                return
            self._run_in(delay)
        log.info("push hint (%s) for %s: syncing in %.1fs", origin, (revision or "?")[:12], delay)

    def _applied_revisions(self) -> frozenset[str]:
        """Before the first sync: the commits the stacks run, from the store (empty if it cannot tell)."""
        try:
            store = self.wiring.open_store()
        except EdgeError:
            return frozenset()
        try:
            return frozenset(a.revision for a in store.applied().values())
        except EdgeError:
            return frozenset()
        finally:
            store.close()

    def _next_run_in(self) -> float | None:
        job = self.scheduler.get_job("sync")
        when = None if job is None else job.next_run_time
        return None if when is None else (when - datetime.now(when.tzinfo)).total_seconds()

    def _run_in(self, delay: float) -> None:
        # max_instances > 1: a (hinted) run that fires while the last one is still in its tail must reach
        # _sync_once, which defers it (``_busy``); APScheduler would drop it, and the hint with it.
        self.scheduler.add_job(
            self._sync_once, "date", run_date=datetime.now() + timedelta(seconds=delay), id="sync",
            replace_existing=True, misfire_grace_time=None, max_instances=3,
        )

    def _sync(self, force: bool = False) -> SyncResult | None:
        if self.stop_event.is_set():
            return None
        self.idle.clear()
        self.last_tick = time.monotonic()
        result = None
        try:
            with self.wiring.sync_lock():
                store, rec = self._reconciler()
                if force:
                    rec.idle.forget()  # a sync asked for by hand is always a full one
                started = time.monotonic()
                result = rec.sync() if force or not self._still_parked(rec) else None
                if result is not None:
                    self.parked = result.revision if outcome.is_permanent(result) else None
                    if result.revision:
                        self.seen = frozenset({result.revision})
                    self.metrics.observe(result, time.monotonic() - started, store, self.unchanged_polls(),
                                         idle=rec.last_idle)
                    if not rec.last_idle:  # an idle poll repeats what was reported already
                        self.wiring.report(store, result, self.reporter)
            if result is not None:
                self.failures = self.failures + 1 if outcome.counts_as_failure(result) else 0
                self.retry_after_s = outcome.retry_after_s(result)
            self.synced_once.set()
        except Exception:  # the daemon must outlive a bug in one sync
            log.exception("sync crashed")
            self._drop()  # start the next one afresh
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
        rec.switch.settle()  # no sync runs: finish the last commit's retirement here (a sync does it first)
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
        self._run_in(delay)

    def begin(self, first_in: float | None = None) -> None:
        """Start the scheduler with the first sync (``first_in`` seconds, or ``first_delay``'s choice);
        a hint heard before this is served now, so the first schedule never undoes it."""
        self.scheduler.start()
        if first_in is None:
            self._schedule(first=True)
        else:
            self._run_in(first_in)
        with self._hint_lock:
            self._started = True
            deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self.hint(*deferred)

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
        self.reporter = self.wiring.fleet_reporter(on_hint=self.hint)
        if self.reporter is not None:
            self.reporter.start()
        self.begin()
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
        self._drop()
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

    def _conditions(self) -> list[StackCondition]:
        """Every stack's readiness now, as ``/status`` shows it (``/metrics`` reads it when scraped)."""
        from gitops_edge.report.status_view import stack_conditions

        runtime = self.wiring.runtime_or_none(timeout=10)[0]
        observed = None
        if runtime is not None:
            try:
                observed = runtime.observe()
            except EdgeError:
                observed = None
        with self._reading() as store:
            return stack_conditions(store, observed)

    @contextmanager
    def _reading(self) -> Iterator[StateStore]:
        """One reader kept open for ``/status`` and ``/metrics``: a new SQLite connection per
        request writes (its shared-memory pages)."""
        with self._read_lock:
            if self._reader is None:
                self._reader = self.wiring.open_store()
            yield self._reader

    def _status_server(self) -> StatusServer | None:
        if not self.config.status.listen:
            return None
        from gitops_edge.report.status_view import DeviceStatus, device_status

        def status() -> DeviceStatus:
            runtime = self.wiring.runtime_or_none(timeout=10)[0]
            with self._reading() as store:
                return device_status(self.config, store, runtime, unchanged=self.unchanged_polls())

        server = StatusServer(
            self.config.status.listen,
            healthy=self.healthy,
            ready=self.synced_once.is_set,
            status=status,
            metrics=self.metrics.exposition,
            webhook=self._webhook(),
        )
        server.start()
        host = self.config.status.listen.rpartition(":")[0]
        hook = ", POST hooks/git" if self.config.status.webhook_secret_file else ""
        log.info("status on http://%s:%d/ (healthz, readyz, status, metrics%s)", host, server.port, hook)
        return server

    def _webhook(self) -> PushWebhook | None:
        secret_file = self.config.status.webhook_secret_file
        return None if secret_file is None else PushWebhook(secret_file, self.config.source.ref, self.hint)


def run_daemon(config: AgentConfig, wiring: DaemonWiring, control: ControlFactory | None = None) -> int:
    return Agent(config, wiring, control).run()
