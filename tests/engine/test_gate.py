"""GATE verdicts on the real ``StackSwitch``: what counts as a healthy new version, and
that a failing one rolls the whole stack back to the very same old containers."""

from __future__ import annotations

import pytest

from gitops_edge.core import outcome
from gitops_edge.errors import ApplyError
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.ports.fakes import Run, Script
from tests.engine.conftest import REV1, REV2, Bench, service, stack, two_services


def deploy_v1(bench: Bench) -> dict[str, str]:
    """v1 of stack ``s`` applied; its container ids by name."""
    bench.commit(REV1, two_services("s", "app:v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    return {n: c.id for n, c in bench.containers("s").items()}


@pytest.mark.parametrize(
    ("script", "healthcheck"),
    [
        (Script(Run.HEALTHY), True),
        (Script(Run.HEALTHY, after_s=12), True),  # a slow start, well inside the timeout
        (Script(Run.RUNNING), False),  # no healthcheck: stable for stable_for without a restart
    ],
    ids=["healthy", "slow-start", "stable-without-healthcheck"],
)
def test_a_good_version_passes_the_gate(bench: Bench, script: Script, healthcheck: bool) -> None:
    v1 = deploy_v1(bench)
    bench.runtime.script("app:v2", script)
    bench.commit(REV2, stack("s", service("db", "app:v2", port="5432"),
                             service("web", "app:v2", after=("db",), healthcheck=healthcheck)))
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    assert result.step is Step.COMMIT
    bench.assert_converged(two_services("s", "app:v2"), REV2)
    assert not set(v1.values()) & {c.id for c in bench.containers("s").values()}
    assert bench.store.applied()["s"].revision == REV2
    assert bench.store.syncs[-1].step is Step.COMMIT


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (Script(Run.UNHEALTHY, after_s=3), "healthcheck reported unhealthy: probe failed"),
        (Script(Run.EXIT, after_s=1, exit_code=3), "exited with code 3"),
        (Script(Run.EXIT, after_s=1, exit_code=0), "exited with code 0"),  # nobody waits for it to complete
        (Script(Run.RESTART, after_s=1), "crash loop: restarted 1 time(s)"),
        (Script(Run.OOM, after_s=1), "killed by the OOM killer"),
        (Script(Run.NEVER), "not healthy after 30s (healthcheck starting)"),
    ],
    ids=["unhealthy", "exit", "exit-0", "restart", "oom", "timeout"],
)
def test_a_bad_version_fails_the_gate_and_the_whole_stack_rolls_back(
    bench: Bench, script: Script, reason: str
) -> None:
    v1 = deploy_v1(bench)
    bench.runtime.script("app:v2", script)
    bench.commit(REV2, two_services("s", "app:v2"))
    result = bench.sync()

    assert result.outcome is Outcome.ROLLED_BACK
    assert result.step is Step.GATE  # where it failed; the rollback itself went fine
    assert isinstance(result.error, ApplyError) and not result.error.retryable
    assert reason in result.reason and "rolled back to the previous containers" in result.reason
    assert outcome.exit_code(result) == 1
    # the whole stack (db passed its own gate in the first wave) runs the very same v1 containers again
    cs = bench.containers("s")
    assert {n: c.id for n, c in cs.items() if not n.endswith(FAILED_SUFFIX)} == v1
    bench.assert_converged(two_services("s", "app:v1"), REV1)
    # the container that failed stays, stopped, for `docker logs`; its evidence is kept with the sync
    failed = [n for n in cs if n.endswith(FAILED_SUFFIX)]
    assert len(failed) == 1 and failed[0].removesuffix(FAILED_SUFFIX) in v1
    assert [e.service for e in result.evidence] == [failed[0].split("-")[1]]
    assert bench.store.syncs[-1].evidence == tuple(result.evidence)
    assert bench.store.quarantined() == {"s": (REV2, result.reason.removeprefix("s: "))}
    assert bench.store.applied()["s"].revision == REV1
    record = bench.store.syncs[-1]
    assert (record.outcome, record.step, record.revision) == (Outcome.ROLLED_BACK, Step.GATE, REV2)


def test_exit_0_is_success_for_a_service_others_wait_to_complete(bench: Bench) -> None:
    bench.runtime.script("migrate:v1", Script(Run.EXIT, after_s=1, exit_code=0))
    s = stack("s", service("migrate", "migrate:v1"), service("web", "app:v1", completes=("migrate",)))
    bench.commit(REV1, s)
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    cs = bench.containers("s")
    assert cs["s-migrate-1"].status == "exited" and cs["s-web-1"].status == "running"


def test_a_failing_service_that_others_wait_to_complete_still_fails(bench: Bench) -> None:
    bench.runtime.script("migrate:v1", Script(Run.EXIT, after_s=1, exit_code=2))
    bench.commit(REV1, stack("s", service("migrate", "migrate:v1"),
                             service("web", "app:v1", completes=("migrate",))))
    result = bench.sync()
    assert result.outcome is Outcome.ROLLED_BACK
    assert "service migrate failed the health gate: exited with code 2" in result.reason
    # a new stack rolls back to nothing but the failed container, stopped, for `docker logs`
    assert set(bench.containers("s")) == {f"s-migrate-1{FAILED_SUFFIX}"}
    (ev,) = result.evidence
    assert (ev.service, ev.exit_code) == ("migrate", 2) and "migrate exited with code 2" in ev.logs
    assert "s" not in bench.store.applied()


def test_gate_waits_on_the_clock_not_the_wall(bench: Bench) -> None:
    """The 30 s timeout passed on the fake clock: the engine slept only through the clock port."""
    bench.runtime.script("app:v1", Script(Run.NEVER))
    bench.commit(REV1, stack("s", service("web", "app:v1", healthcheck=True)))
    result = bench.sync()
    assert result.outcome is Outcome.ROLLED_BACK and "not healthy after 30s" in result.reason
    assert bench.clock.slept >= 30
