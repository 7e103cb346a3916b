"""Issue 11 on the fake engine: every stack's readiness as one reading, stacks independent,
the evidence of a failed gate kept, and nothing left behind by a removed stack or a crash."""

from __future__ import annotations

from dataclasses import replace

from gitops_edge.core import outcome
from gitops_edge.core.compose import StackErrors
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.condition import Ready, Reason, StackCondition
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.spec import DesiredState
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.ports.fakes import Run, Script
from gitops_edge.report.status_view import stack_conditions
from tests.engine.conftest import REV1, REV2, REV3, Bench, service, stack, two_services

REV4 = "4" * 40


def conditions(bench: Bench) -> dict[str, StackCondition]:
    return {c.stack: c for c in stack_conditions(bench.store, bench.runtime.observe())}


def readiness(bench: Bench) -> dict[str, tuple[str, str]]:
    return {name: (c.ready.value, c.reason.value) for name, c in conditions(bench).items()}


def test_a_rollback_is_not_ready_until_a_newer_commit_applies_and_a_removed_stack_leaves_nothing(
    bench: Bench,
) -> None:
    bench.commit(REV1, two_services("a", "app:v1"), two_services("b", "app:v1"))
    bench.sync()
    assert readiness(bench) == {"a": ("True", "Ready"), "b": ("True", "Ready")}

    bench.runtime.script("bad:v2", Script(Run.EXIT, after_s=1, exit_code=7))
    bench.commit(REV2, two_services("a", "bad:v2"), two_services("b", "app:v1"))
    assert bench.sync().outcome is Outcome.ROLLED_BACK
    a = conditions(bench)["a"]
    assert (a.ready, a.reason, a.revision, a.step) == (Ready.FALSE, Reason.ROLLED_BACK, REV1, Step.GATE)
    assert REV2[:12] in a.message and "exited with code 7" in a.message
    assert a.evidence is not None and (a.evidence.service, a.evidence.exit_code) == ("db", 7)
    assert "db exited with code 7" in a.evidence.logs
    assert readiness(bench)["b"] == ("True", "Ready")  # the other stack moved on to REV2

    writes = bench.store.writes
    again = bench.sync()  # the same bad commit: a is held (b has nothing to do), still not ready
    assert again.outcome is Outcome.UNCHANGED and f"commit {REV2[:12]} is quarantined" in again.reason
    assert readiness(bench)["a"] == ("False", "RolledBack")
    assert bench.sync().outcome is Outcome.UNCHANGED
    assert bench.store.writes == writes  # idle polls write no outcome

    bench.commit(REV3, two_services("a", "app:v3"), two_services("b", "app:v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    assert bench.store.quarantined() == {}  # a newer revision applied: the quarantine ended by itself
    assert readiness(bench) == {"a": ("True", "Ready"), "b": ("True", "Ready")}
    assert conditions(bench)["a"].evidence is None
    # the next update of the stack removed the container kept for `docker logs`
    assert not [c for c in bench.runtime.stack("a") if c.name.endswith(FAILED_SUFFIX)]

    bench.commit(REV4, two_services("b", "app:v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    assert readiness(bench) == {"b": ("True", "Ready")}  # no phantom row for a
    assert "a" not in bench.store.stack_outcomes() and "a" not in bench.store.applied()
    assert bench.runtime.stack("a") == []


def test_a_dead_container_after_the_update_is_unhealthy(bench: Bench) -> None:
    bench.commit(REV1, two_services("a", "app:v1"))
    bench.sync()
    web = next(c for c in bench.runtime.stack("a") if c.service == "web")
    web.status = "exited"
    cond = conditions(bench)["a"]
    assert (cond.ready, cond.reason, cond.message) == (Ready.FALSE, Reason.UNHEALTHY, "web exited")


def invalid(desired: DesiredState, stack_name: str) -> StackErrors:
    """What the loader raises when one stack's compose file is wrong: the rest still loads."""
    err = DesiredStateError("services.web.image: must be a string", Location(f"{stack_name}/compose.yaml", 3))
    valid = tuple(s for s in desired.stacks if s.name != stack_name)
    return StackErrors([err], partial=replace(desired, stacks=valid), by_stack={stack_name: [err]})


def test_stacks_are_independent_and_sync_reports_every_problem_with_the_worst_exit_code(bench: Bench) -> None:
    bench.commit(REV1, two_services("a", "app:v1"), two_services("b", "app:v1"), two_services("c", "app:v1"))
    bench.sync()

    # a: invalid compose file; b: asks for privileged (refused); c: a good update
    privileged = stack("b", replace(service("web", "app:v2"), privileged=True))
    desired = DesiredState(REV2, (two_services("a", "app:v2"), privileged, two_services("c", "app:v2")))
    bench.bad_commit(REV2, invalid(desired, "a"))
    result = bench.sync()
    assert result.outcome is Outcome.REFUSED and outcome.exit_code(result) == 3  # refused is worse than invalid
    assert "must be a string" in result.reason and "privileged" in result.reason
    assert len(result.problems) == 2
    bench.assert_converged(two_services("c", "app:v2"), REV2)  # c was not held back
    bench.assert_converged(two_services("a", "app:v1"), REV1)  # a and b kept running what they had
    assert readiness(bench) == {"a": ("False", "Invalid"), "b": ("False", "Refused"), "c": ("True", "Ready")}
    assert outcome.is_permanent(result)  # both problems need a new commit: the daemon parks this one

    # now c's update rolls back as well: a rollback is the worst of all
    bench.runtime.script("bad:v3", Script(Run.EXIT, after_s=1))
    desired = DesiredState(REV3, (two_services("a", "app:v3"), privileged, two_services("c", "bad:v3")))
    bench.bad_commit(REV3, invalid(desired, "a"))
    result = bench.sync()
    assert (result.outcome, result.step, outcome.exit_code(result)) == (Outcome.ROLLED_BACK, Step.GATE, 1)
    assert readiness(bench)["c"] == ("False", "RolledBack")

    # all fixed: every stack ready, each problem gone by itself
    bench.commit(REV4, two_services("a", "app:v4"), two_services("b", "app:v4"), two_services("c", "app:v4"))
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED and outcome.exit_code(result) == 0, result.reason
    assert set(readiness(bench).values()) == {("True", "Ready")}


def test_an_unreachable_stack_is_not_parked_with_an_invalid_one(bench: Bench) -> None:
    """Parking (no retry until the ref moves) is for permanent problems only."""
    bench.commit(REV1, two_services("a", "app:v1"), two_services("b", "app:v1"))
    bench.sync()
    from gitops_edge.errors import RegistryError

    bench.runtime.fail("resolve_image", RegistryError("registry.lan: connection refused"))
    desired = DesiredState(REV2, (two_services("a", "app:v2"), two_services("b", "app:v2")))
    bench.bad_commit(REV2, invalid(desired, "a"))
    result = bench.sync()
    assert outcome.exit_code(result) == 2  # invalid is worse than unreachable
    assert outcome.counts_as_failure(result) and not outcome.is_permanent(result)
    assert readiness(bench) == {"a": ("False", "Invalid"), "b": ("False", "Unreachable")}


def test_a_sync_cut_short_is_marked_interrupted_by_the_next(bench: Bench) -> None:
    bench.commit(REV1, two_services("a", "app:v1"))
    bench.store.start_sync()  # the agent died here
    bench.sync()
    first, second = bench.store.syncs
    assert (first.outcome, first.reason) == (Outcome.ERROR, "interrupted")
    assert second.outcome is Outcome.APPLIED


def test_a_sync_cut_short_is_closed_even_when_the_next_changes_nothing(bench: Bench) -> None:
    """A crash before the first journal write left a "running" row; a new process's first
    sync closes it although that sync (nothing to do) writes no row of its own."""
    bench.commit(REV1, two_services("a", "app:v1"))
    bench.sync()
    bench.store.start_sync()  # the agent died here, before STAGE wrote its journal
    result = bench.sync()  # a fresh agent process
    assert result.outcome is Outcome.UNCHANGED
    assert [(r.outcome, r.reason) for r in bench.store.syncs][-1] == (Outcome.ERROR, "interrupted")
    assert all(r.finished_at is not None for r in bench.store.syncs)
