"""The clock port: monotonic time for deadlines, sleeping, and wall time for update windows.

The engine never calls ``time`` itself, so a fake clock (``ports.fakes.FakeClock``,
whose ``sleep`` only advances time) runs a whole health gate in microseconds.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, durations)."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> datetime:
        """The local wall time, timezone-aware (update windows)."""
        ...


class SystemClock:
    """The real clock; so thin that it needs no adapter."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now().astimezone()
