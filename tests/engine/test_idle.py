"""The idle short-circuit (engine/idle.py): a poll where nothing moved lists the containers once
and stops at FETCH, writing nothing; any drift or new commit runs the full sync in the same poll."""

from __future__ import annotations

from gitops_edge.errors import EngineUnavailableError, SourceError
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from tests.engine.conftest import REV1, REV2, Bench, two_services


def _ops_since(bench: Bench, n: int) -> set[str]:
    return {op for op, _ in bench.runtime.calls[n:]}


def test_an_idle_poll_lists_containers_once_and_records_nothing(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    agent = bench.agent()  # the daemon keeps one reconciler across polls
    assert agent.sync().outcome is Outcome.APPLIED
    assert agent.sync().step is Step.PLAN  # the first no-op poll is a full one; it arms the memo
    calls, rows = len(bench.runtime.calls), len(bench.store.syncs)
    for _ in range(5):
        result = agent.sync()
        assert (result.outcome, result.step, result.revision) == (Outcome.UNCHANGED, Step.FETCH, REV1)
        assert agent.last_idle
    assert _ops_since(bench, calls) == {"fingerprint"}  # no observe, no image resolution
    assert len(bench.store.syncs) == rows
    assert agent.idle.unchanged_polls == 6


def test_drift_and_new_commits_still_run_the_full_sync_in_the_same_poll(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    agent = bench.agent()
    agent.sync()
    agent.sync()
    removed = next(c for c in bench.runtime.containers.values() if c.service == "web")
    del bench.runtime.containers[removed.id]  # someone removed a container by hand
    repaired = agent.sync()
    assert repaired.outcome is Outcome.APPLIED and not agent.last_idle
    bench.assert_converged(two_services("s", "app:v1"), REV1)

    agent.sync()
    stopped = next(c for c in bench.runtime.containers.values() if c.service == "web")
    stopped.status = "exited"  # stopped by hand
    assert agent.sync().outcome is Outcome.APPLIED
    bench.assert_converged(two_services("s", "app:v1"), REV1)

    agent.sync()
    bench.commit(REV2, two_services("s", "app:v2"))
    assert agent.sync().outcome is Outcome.APPLIED
    bench.assert_converged(two_services("s", "app:v2"), REV2)


def test_an_operator_command_or_the_safety_interval_runs_the_full_sync(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    agent = bench.agent()
    agent.sync()
    agent.sync()
    assert agent.sync().step is Step.FETCH
    bench.store.suspended_rows["s"] = "maintenance"  # `gitops-edge suspend s`
    assert agent.sync().step is Step.PLAN
    assert agent.sync().step is Step.FETCH  # the new held state is remembered
    bench.clock.advance(agent.idle.full_check_s + 1)
    calls = len(bench.runtime.calls)
    assert agent.sync().step is Step.PLAN
    assert "observe" in _ops_since(bench, calls)


def test_an_idle_poll_reports_the_sources_failure_first_and_then_the_engines(bench: Bench) -> None:
    """The container list runs beside the ls-remote: either failure is still the poll's own."""
    bench.commit(REV1, two_services("s", "app:v1"))
    agent = bench.agent()
    agent.sync()
    assert agent.sync().step is Step.PLAN  # armed
    bench.source.error = SourceError("cannot reach fake://repo")
    bench.runtime.fail("fingerprint", EngineUnavailableError("engine gone"))
    both = agent.sync()
    assert (both.outcome, both.reason) == (Outcome.ERROR, "cannot reach fake://repo")
    bench.source.error = None
    agent.sync()
    assert agent.sync().step is Step.FETCH  # armed again
    bench.runtime.fail("fingerprint", EngineUnavailableError("engine gone"))
    engine = agent.sync()
    assert (engine.outcome, engine.reason, engine.step) == (Outcome.ERROR, "engine gone", Step.FETCH)
    assert agent.sync().step is Step.PLAN  # the memo was not trusted after the failed poll
