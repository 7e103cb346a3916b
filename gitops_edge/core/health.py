"""Health verdicts for the gate: pure, from one inspection of a container.

A changed service must prove itself: healthy by its healthcheck, or (with
none) running without a restart for ``stable_for``. Anything that shows the
release is bad (exit, OOM kill, a restart, ``unhealthy``) fails at once
rather than at the timeout, so a crash loop is caught in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gitops_edge.model.observed import ContainerState


class Health(StrEnum):
    OK = "ok"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class Verdict:
    health: Health
    reason: str


def verdict(
    state: ContainerState,
    *,
    stable_for_s: float,
    baseline_restarts: int = 0,
    exit_zero_ok: bool = False,
) -> Verdict:
    """Judge one inspection of a freshly started container."""
    if state.oom_killed:
        return Verdict(Health.FAIL, f"killed by the OOM killer (exit code {state.exit_code})")
    if state.status in ("exited", "dead"):
        if exit_zero_ok and state.exit_code == 0:
            return Verdict(Health.OK, "completed successfully")
        return Verdict(Health.FAIL, f"exited with code {state.exit_code}")
    if state.restart_count > baseline_restarts or state.status == "restarting":
        n = state.restart_count - baseline_restarts
        return Verdict(Health.FAIL, f"crash loop: restarted {max(n, 1)} time(s) (last exit code {state.exit_code})")
    if state.status != "running":
        return Verdict(Health.WAIT, f"container is {state.status}")
    if state.health == "unhealthy":
        detail = f": {state.health_log}" if state.health_log else ""
        return Verdict(Health.FAIL, f"healthcheck reported unhealthy{detail}")
    if state.health == "healthy":
        return Verdict(Health.OK, "healthy")
    if state.health == "starting":
        return Verdict(Health.WAIT, "healthcheck starting")
    if state.running_for_s >= stable_for_s:
        return Verdict(Health.OK, f"running for {state.running_for_s:.0f}s without a restart")
    return Verdict(Health.WAIT, f"running for {state.running_for_s:.1f}s of {stable_for_s:.0f}s")


def timeout_reason(last: Verdict, timeout_s: float) -> str:
    return f"not healthy after {timeout_s:.0f}s ({last.reason})"
