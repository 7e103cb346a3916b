"""Crash points: die by SIGKILL at a named journal point of an update, when asked to.

Why production code carries this: the promise that a power cut at any moment
of a switch is finished or undone from the journal on the next start (never two
containers per service, never an orphan) can only be shown by killing the real
agent process at each of those points. ``tests/integration/test_crash_safety.py``
runs the agent as a subprocess with ``GITOPS_EDGE_CRASH_AT=<point>``; because the
points sit on the real code paths, what is tested is exactly what runs on a
device. Unset (always, on a device) a point costs one environment lookup and
does nothing else.
"""

from __future__ import annotations

import os
import signal

ENV = "GITOPS_EDGE_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
