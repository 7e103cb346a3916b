"""core.health: one verdict per inspection, every branch."""

from __future__ import annotations

import pytest

from gitops_edge.core.health import Health, Verdict, timeout_reason, verdict
from gitops_edge.model.observed import ContainerState


def judge(stable_for_s: float = 10.0, baseline_restarts: int = 0, exit_zero_ok: bool = False,
          **state: object) -> Verdict:
    return verdict(ContainerState(**state), stable_for_s=stable_for_s,  # type: ignore[arg-type]
                   baseline_restarts=baseline_restarts, exit_zero_ok=exit_zero_ok)


def test_oom_kill_fails_before_anything_else() -> None:
    v = judge(status="exited", exit_code=137, oom_killed=True, health="healthy")
    assert v == Verdict(Health.FAIL, "killed by the OOM killer (exit code 137)")


@pytest.mark.parametrize("status", ["exited", "dead"])
def test_exit_fails(status: str) -> None:
    assert judge(status=status, exit_code=3) == Verdict(Health.FAIL, "exited with code 3")


def test_exit_zero_fails_unless_completion_is_what_was_asked() -> None:
    assert judge(status="exited", exit_code=0) == Verdict(Health.FAIL, "exited with code 0")
    assert judge(status="exited", exit_code=0, exit_zero_ok=True) == Verdict(Health.OK, "completed successfully")
    assert judge(status="exited", exit_code=1, exit_zero_ok=True).health is Health.FAIL


def test_a_restart_since_start_is_a_crash_loop() -> None:
    v = judge(status="running", restart_count=3, baseline_restarts=1, exit_code=2, health="healthy")
    assert v == Verdict(Health.FAIL, "crash loop: restarted 2 time(s) (last exit code 2)")


def test_restarting_state_is_a_crash_loop_even_without_a_counted_restart() -> None:
    v = judge(status="restarting", restart_count=0, exit_code=1)
    assert v == Verdict(Health.FAIL, "crash loop: restarted 1 time(s) (last exit code 1)")


def test_restarts_up_to_the_baseline_are_not_held_against_it() -> None:
    assert judge(status="running", restart_count=4, baseline_restarts=4, running_for_s=20).health is Health.OK


@pytest.mark.parametrize("status", ["created", "paused", "removing"])
def test_not_yet_running_waits(status: str) -> None:
    assert judge(status=status) == Verdict(Health.WAIT, f"container is {status}")


def test_unhealthy_fails_with_the_probe_output() -> None:
    assert judge(status="running", health="unhealthy") == Verdict(Health.FAIL, "healthcheck reported unhealthy")
    v = judge(status="running", health="unhealthy", health_log="connection refused")
    assert v == Verdict(Health.FAIL, "healthcheck reported unhealthy: connection refused")


def test_healthy_passes_at_once_and_starting_waits() -> None:
    assert judge(status="running", health="healthy", running_for_s=0) == Verdict(Health.OK, "healthy")
    # a healthcheck decides, not the stability time
    assert judge(status="running", health="starting", running_for_s=999) == Verdict(Health.WAIT,
                                                                                    "healthcheck starting")


def test_without_healthcheck_stable_for_decides() -> None:
    assert judge(status="running", running_for_s=2.5, stable_for_s=5) == Verdict(
        Health.WAIT, "running for 2.5s of 5s")
    assert judge(status="running", running_for_s=5, stable_for_s=5) == Verdict(
        Health.OK, "running for 5s without a restart")
    assert judge(status="running", running_for_s=0, stable_for_s=0).health is Health.OK


def test_timeout_reason_carries_the_last_verdict() -> None:
    assert timeout_reason(Verdict(Health.WAIT, "healthcheck starting"), 60) == (
        "not healthy after 60s (healthcheck starting)")
