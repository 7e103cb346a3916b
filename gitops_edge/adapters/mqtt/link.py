"""The MQTT adapter: one paho-mqtt client, connected in the background.

paho is imported lazily (only when ``mqtt`` is configured or ``fleet status``
runs). Nothing paho raises leaves this module: configuration problems become
``MqttError``, and publishing while the broker is away simply reports False
so the caller keeps the message in its own persistent queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gitops_edge.errors import MqttError
from gitops_edge.model.config import MqttConfig

if TYPE_CHECKING:  # for the annotations only: paho itself is imported when a link starts
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)


class MqttLink:
    """A client that connects (and reconnects) on its own thread.

    ``will`` is the Last Will (topic, payload), published retained by the broker
    when this client vanishes without a clean disconnect. ``on_connect`` runs on
    paho's thread after every (re)connect: keep it short, never block in it.
    """

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        *,
        will: tuple[str, bytes] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        subscribe: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.client_id = client_id
        self._will = will
        self._on_connect = on_connect
        self._on_message = on_message
        self._subscribe = subscribe
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._client: Client | None = None
        self.last_error = ""

    @property
    def where(self) -> str:
        return f"mqtt{'s' if self.config.tls else ''}://{self.config.host}:{self.config.port}"

    def start(self) -> None:
        """Begin connecting in the background; MqttError only for local problems (files, TLS setup)."""
        try:
            import paho.mqtt.client as paho
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError:
            raise MqttError("mqtt is configured but paho-mqtt is not installed") from None
        password = None
        if self.config.password_file is not None:
            try:
                password = self.config.password_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise MqttError(f"cannot read mqtt password file {self.config.password_file}: {exc}") from None
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if self.config.username is not None:
            client.username_pw_set(self.config.username, password)
        if self._will is not None:
            client.will_set(self._will[0], self._will[1], qos=1, retain=True)
        try:
            if self.config.tls:
                c = self.config
                client.tls_set(
                    ca_certs=str(c.ca_file) if c.ca_file else None,
                    certfile=str(c.cert_file) if c.cert_file else None,
                    keyfile=str(c.key_file) if c.key_file else None,
                )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a bad cert, key or CA file
            raise MqttError(f"mqtt TLS setup failed: {exc}") from None
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_connect_fail = self._handle_connect_fail
        client.on_subscribe = lambda *_a: self._subscribed.set()
        client.on_message = self._handle_message
        self._client = client
        try:
            client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
            client.loop_start()
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {self.where}: {exc}") from None

    # paho's callbacks; ``userdata`` is paho's opaque Any, unused here
    def _handle_connect(
        self, client: Client, _ud: Any, _flags: ConnectFlags, reason: ReasonCode, _props: Properties | None
    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("mqtt %s: %s", self.where, self.last_error)
            return
        self._connected.set()
        log.info("mqtt connected to %s", self.where)
        if self._subscribe:
            # QoS 0: retained messages for an online reader are not held to the broker's
            # per-client in-flight and queue limits (Mosquitto drops QoS 1 ones past ~1,000).
            client.subscribe([(t, 0) for t in self._subscribe])
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception:  # a reporting bug must not kill paho's thread
                log.exception("mqtt on_connect handler failed")

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on paho's thread after every (re)connection; it must not block."""
        self._on_connect = callback

    def on_message(self, callback: Callable[[str, bytes], None], subscribe: tuple[str, ...]) -> None:
        """Subscribe to ``subscribe`` on every connection and hand each message to ``callback``
        (on paho's thread: it must not block). Call before ``start``."""
        self._on_message = callback
        self._subscribe = subscribe

    def _handle_connect_fail(self, _c: Client, _ud: Any) -> None:
        if not self.last_error:
            log.info("mqtt broker %s not reachable; retrying in the background", self.where)
        self.last_error = "connection failed"

    def _handle_disconnect(
        self, _c: Client, _ud: Any, _flags: DisconnectFlags, reason: ReasonCode, _props: Properties | None
    ) -> None:
        if self._connected.is_set():
            log.info("mqtt disconnected from %s (%s)", self.where, reason)
        self._connected.clear()

    def _handle_message(self, _c: Client, _ud: Any, msg: MQTTMessage) -> None:
        if self._on_message is not None:
            try:
                self._on_message(msg.topic, bytes(msg.payload))
            except Exception:  # a handler bug must not kill paho's thread
                log.exception("mqtt message handler failed")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, timeout_s: float = 10) -> bool:
        """True once the broker acknowledged (QoS 1) or took (QoS 0) it; False when not now.

        Nothing is handed to paho while disconnected: its queue lives in memory
        only, and the caller's persistent queue is the one that must hold it.
        """
        if self._client is None or not self.connected:
            return False
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            info.wait_for_publish(timeout_s)
            return info.is_published()
        except (RuntimeError, ValueError, OSError) as exc:
            self.last_error = str(exc)
            return False

    def stop(self) -> None:
        """Disconnect cleanly (the broker then does not publish the Last Will)."""
        if self._client is None:
            return
        try:
            self._client.disconnect()
            self._client.loop_stop()
        except (RuntimeError, ValueError, OSError):
            pass
        self._client = None
        self._connected.clear()


def read_retained(config: MqttConfig, topics: tuple[str, ...], wait_s: float, client_id: str) -> dict[str, bytes]:
    """Subscribe to ``topics`` and gather the retained (and live) messages for ``wait_s``."""
    got: dict[str, bytes] = {}
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes) -> None:
        with lock:
            if payload:
                got[topic] = payload
            else:
                got.pop(topic, None)  # an empty retained message clears the topic

    link = MqttLink(config, client_id, on_message=on_message, subscribe=topics)
    link.start()
    try:
        connect_timeout = max(wait_s, 5.0)
        if not link.wait_connected(connect_timeout):
            raise MqttError(f"no answer from the broker at {link.where} within {connect_timeout:g}s"
                            + (f" ({link.last_error})" if link.last_error else ""))
        link.wait_subscribed(connect_timeout)
        threading.Event().wait(wait_s)
    finally:
        link.stop()
    with lock:
        return dict(got)


def publish_retained(config: MqttConfig, topic: str, payload: bytes, client_id: str, timeout_s: float = 10) -> None:
    """Connect, publish one retained QoS 1 message, wait for the broker's ack, disconnect; MqttError if not."""
    link = MqttLink(config, client_id)
    link.start()
    try:
        if not link.wait_connected(timeout_s):
            raise MqttError(f"no answer from the broker at {link.where} within {timeout_s:g}s"
                            + (f" ({link.last_error})" if link.last_error else ""))
        if not link.publish(topic, payload, qos=1, retain=True, timeout_s=timeout_s):
            raise MqttError(f"the broker at {link.where} did not acknowledge {topic}"
                            + (f" ({link.last_error})" if link.last_error else ""))
    finally:
        link.stop()
