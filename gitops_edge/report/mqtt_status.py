"""Fleet status over MQTT: what a device publishes, and ``gitops-edge fleet status``.

Topics (``<prefix>`` is ``mqtt.topic_prefix``, default ``gitops-edge``):

- ``<prefix>/<device>/status``  retained JSON (core.fleet_report.status_payload), when it
  changed after a sync (timestamps aside), on every (re)connect, and as a heartbeat every
  ``mqtt.heartbeat`` (15 min) so ``fleet status`` can tell a quiet device from a silent one
- ``<prefix>/<device>/events``  JSON events (applied, rollback, refusal), QoS 1, not retained
- ``<prefix>/<device>/online``  retained "true" on connect; "false" as the Last Will and
  on a clean stop
- ``<prefix>/refs/<ref>``  read, not written: the retained newest commit of the ref
  (``gitops-edge fleet notify``); a new one starts a poll at once (``on_hint``)

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gitops_edge import __version__
from gitops_edge.core.fleet_report import (
    event_for,
    event_payload,
    refusal_fingerprint,
    status_digest,
    status_payload,
    topic,
)
from gitops_edge.core.push import parse_hint, ref_topic
from gitops_edge.errors import EdgeError
from gitops_edge.logs import scrub
from gitops_edge.model.config import AgentConfig
from gitops_edge.report.webhook import scrub_evidence

if TYPE_CHECKING:
    from gitops_edge.adapters.store.sqlite import StateStore
    from gitops_edge.model.result import SyncResult
    from gitops_edge.ports.messaging import BrokerLink
    from gitops_edge.ports.runtime import ContainerRuntime

log = logging.getLogger("gitops_edge.mqtt")

HintCallback = Callable[[str | None, str], None]  # (revision or None, origin such as "mqtt")

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
    if result.evidence:
        event["evidence"] = [scrub_evidence(e) for e in result.evidence]
    store.queue_add(QUEUE, json.dumps(event))


def status_message(config: AgentConfig, store: StateStore, runtime: ContainerRuntime | None) -> dict[str, Any]:
    """The retained status message, fresh from the state store and the engine (None: unreachable)."""
    from gitops_edge.report.status_view import device_status

    status = device_status(config, store, runtime)
    return status_payload(status, dict(config.device.labels), __version__, time.time())



def client_id(config: AgentConfig, daemon: bool) -> str:
    """The daemon's client id is stable per device (a restart takes over its own session);
    a one-shot ``sync`` uses its own so it never kicks the daemon off the broker."""
    dev = config.device.id
    cid = f"gitops-edge-{dev}" if daemon else f"gitops-edge-{dev}-{socket.gethostname()}-{os.getpid()}"
    return cid[:200]


def will_for(config: AgentConfig, daemon: bool) -> tuple[str, bytes] | None:
    """The daemon's Last Will: the broker marks the device offline when it vanishes."""
    assert config.mqtt is not None
    return (topic(config.mqtt.topic_prefix, config.device.id, "online"), b"false") if daemon else None


class FleetReporter:
    """Publishes for one device; ``daemon`` holds the online flag and the Last Will."""

    def __init__(
        self,
        config: AgentConfig,
        link: BrokerLink,
        open_store: Callable[[], StateStore],
        runtime: Callable[[], ContainerRuntime | None],
        *,
        daemon: bool = True,
        on_hint: HintCallback | None = None,
    ) -> None:
        assert config.mqtt is not None
        self.config = config
        self.mqtt = config.mqtt
        self.daemon = daemon
        dev = config.device.id
        self.topics = {leaf: topic(self.mqtt.topic_prefix, dev, leaf) for leaf in ("status", "events", "online")}
        self.link = link
        link.on_connect(self._connected)
        self._on_hint = on_hint
        self.ref_topic: str | None = None
        if on_hint is not None and self.mqtt.push:
            try:
                self.ref_topic = ref_topic(self.mqtt.topic_prefix, config.source.ref)
            except ValueError as exc:
                log.warning("mqtt push hints off: %s", exc)
        if self.ref_topic is not None:
            link.on_message(self._message, (self.ref_topic,))
        self._open_store = open_store
        self._runtime = runtime
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._status_due = True
        self._force_status = True  # publish even if unchanged: first time, new connection, heartbeat
        self._digest = ""  # of the last status the broker took
        self._published_at = float("-inf")  # self.clock() then
        self.clock: Callable[[], float] = time.monotonic
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
        self._force_status = True  # a broker restarted without persistence lost the retained one
        self._announce = True  # the online flag is retained: once per connection is enough
        self._wake.set()

    def _message(self, topic_: str, payload: bytes) -> None:  # paho's thread: no waiting here
        if topic_ != self.ref_topic or self._on_hint is None or not payload:
            return  # an empty retained message only clears the topic
        revision = parse_hint(payload)
        if revision is None:
            log.info("mqtt: ignoring a malformed hint on %s (%d bytes)", topic_, len(payload))
            return
        log.debug("mqtt: %s says %s", topic_, revision[:12])
        self._on_hint(revision, "mqtt")

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RESEND_EVERY_S)
            self._wake.clear()
            if not self._stop.is_set():
                self.tick()

    def tick(self) -> None:
        """One round of the worker: heartbeat due?, then flush; never raises."""
        if not self.link.connected:
            return
        if self.clock() - self._published_at >= self.mqtt.heartbeat_s:
            self._status_due = self._force_status = True
        try:
            self.flush()
        except Exception:  # a reporting bug must never stop the agent
            log.exception("mqtt publishing failed")

    # -- both ----------------------------------------------------------------------------
    def flush(self) -> int:
        """Online flag, queued events in order, then the status; returns events delivered."""
        store = self._open_store()
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
            if self._status_due:
                self._publish_status(store)
            return sent
        finally:
            store.close()


    def _publish_status(self, store: StateStore) -> None:
        """The status, if it says something new (or must be said again); quiet polls send nothing."""
        message = status_message(self.config, store, self._runtime())
        digest = status_digest(message)
        if digest == self._digest and not self._force_status:
            self._status_due = False
            return
        payload = json.dumps(message, sort_keys=True).encode()
        if self.link.publish(self.topics["status"], payload, retain=True):
            self._status_due = self._force_status = False
            self._digest, self._published_at = digest, self.clock()


def publish_once(reporter: FleetReporter, timeout_s: float = ONESHOT_TIMEOUT_S) -> None:
    """For a one-shot ``sync``: deliver the status and queued events if the broker answers soon."""
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
