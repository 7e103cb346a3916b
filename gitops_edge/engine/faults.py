"""Test-only fault injection: die by SIGKILL at a named journal point.

``GITOPS_EDGE_CRASH_AT=<point>`` makes the agent kill itself exactly there,
so the crash-safety tests can stop a real process at every step of an
update. Unset (always, in production) this is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "GITOPS_EDGE_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
