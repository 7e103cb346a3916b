"""Fleet status over MQTT: what a device publishes, and ``gitops-edge fleet status``.

Topics (``<prefix>`` is ``mqtt.topic_prefix``, default ``gitops-edge``):

- ``<prefix>/<device>/status``  retained JSON (core.fleet_report.status_payload), after
  every sync and on every (re)connect
- ``<prefix>/<device>/events``  JSON events (applied, rollback, refusal), QoS 1, not retained
- ``<prefix>/<device>/online``  retained "true" on connect; "false" as the Last Will and
  on a clean stop

Events are queued in the state store first (``queue`` table, name "mqtt") and
deleted only once the broker acknowledged them, so an event of a sync done while
the broker was down (or the agent restarted) is delivered when it is back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from gitops_edge import __version__
from gitops_edge.core.fleet_report import (
    event_for,
    event_payload,
    refusal_fingerprint,
    status_payload,
    topic,
)
from gitops_edge.errors import EdgeError
from gitops_edge.logs import scrub
from gitops_edge.model.config import AgentConfig

if TYPE_CHECKING:
    from gitops_edge.adapters.mqtt import MqttLink
    from gitops_edge.adapters.state_store import StateStore
    from gitops_edge.reconciler import SyncResult

log = logging.getLogger("gitops_edge.mqtt")

QUEUE = "mqtt"
RESEND_EVERY_S = 30.0  # the worker also wakes on this period to retry what is queued
ONESHOT_TIMEOUT_S = 5.0  # `sync` from the command line waits this long for the broker, then leaves it queued


def record_sync(config: AgentConfig, store: StateStore, result: SyncResult) -> None:
    """Queue the event a finished sync is reported as (persistently); nothing is sent here."""
    if config.mqtt is None:
        return
    kind = event_for(result.outcome.value)
    if kind == "refusal":  # the same refusal on every poll is one event
        fp = refusal_fingerprint(result.revision, result.reason)
        if store.get("mqtt:last_refusal") == fp:
            return
        store.put("mqtt:last_refusal", fp)
    elif result.outcome.value in ("applied", "unchanged"):
        store.put("mqtt:last_refusal", "")
    if kind is None:
        return
    event = event_payload(kind, config.device.id, result.revision, scrub(result.reason), result.actions, time.time())
    store.queue_add(QUEUE, json.dumps(event))


def current_status(config: AgentConfig, store: StateStore) -> bytes:
    """The retained status message, fresh from the state store and the engine."""
    from gitops_edge.adapters.docker_runtime import DockerRuntime
    from gitops_edge.status import device_status

    try:
        runtime: Any = DockerRuntime(timeout=10)
    except EdgeError:
        runtime = None
    status = device_status(config, store, runtime)
    payload = status_payload(status, dict(config.device.labels), __version__, time.time())
    return json.dumps(payload, sort_keys=True).encode()


class FleetReporter:
    """Publishes for one device; ``daemon`` holds the online flag and the Last Will."""

    def __init__(self, config: AgentConfig, *, daemon: bool = True) -> None:
        from gitops_edge.adapters.mqtt import MqttLink

        assert config.mqtt is not None
        self.config = config
        self.mqtt = config.mqtt
        self.daemon = daemon
        dev = config.device.id
        self.topics = {leaf: topic(self.mqtt.topic_prefix, dev, leaf) for leaf in ("status", "events", "online")}
        # The daemon's client id is stable per device (a restart takes over its own session);
        # a one-shot `sync` uses its own so it never kicks the daemon off the broker.
        client_id = f"gitops-edge-{dev}" if daemon else f"gitops-edge-{dev}-{socket.gethostname()}-{os.getpid()}"
        self.link: MqttLink = MqttLink(
            self.mqtt, client_id[:200],
            will=(self.topics["online"], b"false") if daemon else None,
            on_connect=self._connected,
        )  # fmt: skip
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._status_due = True
        self._announce = True
        self._thread: threading.Thread | None = None

    # -- daemon --------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background and publish from a worker thread; never raises for the broker."""
        try:
            self.link.start()
        except EdgeError as exc:
            log.warning("mqtt fleet status disabled: %s", exc)
            return
        self._thread = threading.Thread(target=self._work, name="mqtt-reporter", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A sync finished: publish its status and flush the queued events now."""
        self._status_due = True
        self._wake.set()

    def stop(self) -> None:
        """Say "offline" ourselves, then disconnect cleanly."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        if self.daemon:
            self.link.publish(self.topics["online"], b"false", retain=True, timeout_s=2)
        self.link.stop()

    def _connected(self) -> None:  # paho's thread: no waiting here
        self._status_due = True
        self._announce = True  # the online flag is retained: once per connection is enough
        self._wake.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RESEND_EVERY_S)
            self._wake.clear()
            if self._stop.is_set() or not self.link.connected:
                continue
            try:
                self.flush()
            except Exception:  # a reporting bug must never stop the agent
                log.exception("mqtt publishing failed")

    # -- both ----------------------------------------------------------------------------
    def flush(self) -> int:
        """Online flag, queued events in order, then the status; returns events delivered."""
        from gitops_edge.wiring import open_store

        store = open_store(self.config)
        try:
            if self.daemon and self._announce and self.link.publish(self.topics["online"], b"true", retain=True):
                self._announce = False
            sent = 0
            for item_id, payload in store.queue_items(QUEUE):
                if not self.link.publish(self.topics["events"], payload.encode(), qos=1):
                    log.info("mqtt: %d event(s) wait for the broker", len(store.queue_items(QUEUE)))
                    return sent  # keep order: the rest wait behind this one
                store.queue_remove(item_id)
                sent += 1
            status = current_status(self.config, store) if self._status_due else None
            if status is not None and self.link.publish(self.topics["status"], status, retain=True):
                self._status_due = False
            return sent
        finally:
            store.close()


def publish_once(config: AgentConfig, timeout_s: float = ONESHOT_TIMEOUT_S) -> None:
    """For a one-shot ``sync``: deliver the status and queued events if the broker answers soon."""
    if config.mqtt is None:
        return
    reporter = FleetReporter(config, daemon=False)
    try:
        reporter.link.start()
        if not reporter.link.wait_connected(timeout_s):
            log.info("mqtt broker %s not reachable; events stay queued", reporter.link.where)
            return
        reporter.flush()
    except EdgeError as exc:
        log.warning("mqtt: %s", exc)
    finally:
        reporter.link.stop()
