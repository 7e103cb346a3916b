"""The message-broker port: one connection that publishes a device's status and events and hears push hints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class BrokerLink(Protocol):
    @property
    def where(self) -> str:
        """The broker, for messages (``host:port``)."""
        ...

    @property
    def connected(self) -> bool: ...

    def start(self) -> None:
        """Connect in the background; reconnects by itself."""
        ...

    def stop(self) -> None: ...

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after every (re)connection; it must not block."""
        ...

    def on_message(self, callback: Callable[[str, bytes], None], subscribe: tuple[str, ...]) -> None:
        """Subscribe to ``subscribe`` on every connection; ``callback(topic, payload)`` must not block."""
        ...

    def wait_connected(self, timeout_s: float) -> bool: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, timeout_s: float = 10) -> bool:
        """True once the broker acknowledged it (QoS 1) or it was sent (QoS 0)."""
        ...
