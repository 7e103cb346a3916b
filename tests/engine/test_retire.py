"""The daemon's commit: the replaced containers are retired off the sync's path.

Once the new containers passed the gate and COMMITTING is journaled, the sync
reports; a thread stops (gracefully) and removes the kept containers, and
``StackSwitch.settle`` (the next sync) joins it and clears the journal. The
process dying meanwhile leaves COMMITTING, which recovery finishes: the rollback
guarantee and crash safety are those of the synchronous commit.
"""

from __future__ import annotations

import threading

import pytest

from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.model.journal import Phase
from gitops_edge.model.status import Outcome
from gitops_edge.ports.fakes import Crash
from tests.engine.conftest import REV1, REV2, REV3, Bench, CrashPoints, two_services


def daemon(bench: Bench) -> Reconciler:
    rec = bench.agent()
    rec.switch.retire_in_background = True
    return rec


class Held:
    """Holds the retirement thread's engine calls until ``release``: the sync's own calls run
    first, as a slow stop would let them (and the fakes are not shared between threads)."""

    def __init__(self, bench: Bench) -> None:
        self.go = threading.Event()
        self.retired: list[tuple[str, str]] = []
        bench.runtime.before = self

    def __call__(self, operation: str, target: str) -> None:
        if threading.current_thread().name.startswith("retire-"):
            assert self.go.wait(10), "never released"
            self.retired.append((operation, target))

    def release(self) -> None:
        self.go.set()


def test_the_sync_reports_before_the_replaced_containers_go_and_the_next_one_settles(bench: Bench) -> None:
    rec = daemon(bench)
    bench.commit(REV1, two_services("s", "app:v1"))
    assert rec.sync().outcome is Outcome.APPLIED  # nothing replaced: nothing to retire
    v1 = {n: c.id for n, c in bench.containers("s").items()}
    held = Held(bench)
    bench.commit(REV2, two_services("s", "app:v2"))
    result = rec.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    assert bench.store.applied()["s"].revision == REV2
    [(rev, phase, _data)] = bench.store.journal().values()
    assert (rev, phase) == (REV2, Phase.COMMITTING.value)  # a crash now: recovery finishes the commit
    web = bench.runtime.containers[v1["s-web-1"]]
    assert web.status == "running"  # start-first: the old web still serves until retired
    held.release()
    assert rec.sync().outcome is Outcome.UNCHANGED  # settles first
    bench.assert_converged(two_services("s", "app:v2"), REV2)  # no kept container, no journal
    # the old web was stopped (its grace period) before it was removed; db was stopped before the switch
    # (a look first: a container created with pre_stop hooks runs them before its stop)
    assert held.retired == [("inspect_state", v1["s-web-1"]), ("stop_container", v1["s-web-1"]),
                            ("remove_container", v1["s-db-1"]), ("remove_container", v1["s-web-1"])]


@pytest.mark.parametrize("point", ["before-stop", "after-stop", "after-commit-remove"])
def test_death_while_retiring_is_finished_by_the_next_start(
    bench: Bench, crash_points: CrashPoints, point: str
) -> None:
    rec = daemon(bench)
    bench.commit(REV1, two_services("s", "app:v1"))
    assert rec.sync().outcome is Outcome.APPLIED
    held = Held(bench)
    bench.commit(REV2, two_services("s", "app:v2"))
    n = 2 if point in ("before-stop", "after-stop") else 1  # the first stop is db's, in the switch
    crash_points.arm(point, n)
    assert rec.sync().outcome is Outcome.APPLIED
    held.release()
    for job in rec.switch._retiring:  # the process dies here: the thread stopped at the point
        assert job.thread is not None
        job.thread.join(10)
        assert isinstance(job.error, Crash)
    crash_points.arm("-none-")
    fresh = bench.agent()  # the next start: recovery finishes the commit from the journal
    assert fresh.sync().outcome in (Outcome.UNCHANGED, Outcome.APPLIED)
    bench.assert_converged(two_services("s", "app:v2"), REV2)
    assert len(bench.runtime.containers) == 2
    assert bench.store.quarantined() == {}


def test_settle_never_clears_a_journal_another_switch_wrote(bench: Bench) -> None:
    rec = daemon(bench)
    bench.commit(REV1, two_services("s", "app:v1"))
    rec.sync()
    held = Held(bench)
    bench.commit(REV2, two_services("s", "app:v2"))
    rec.sync()
    bench.store.journal_write("s", REV3, Phase.SWITCHING.value, {"kept": [], "created": []})  # another process
    held.release()
    rec.switch.settle()
    assert bench.store.journal()["s"][:2] == (REV3, Phase.SWITCHING.value)


def test_a_manual_rollback_while_the_daemon_retires_finishes_that_commit_first(bench: Bench) -> None:
    """``gitops-edge rollback`` (its own process, the sync lock free) finds the daemon's COMMITTING
    journal: recovery finishes it before the rollback journals its own switch, so the replaced
    containers are never left unjournaled."""
    from gitops_edge.engine.manual_rollback import rollback_stack

    rec = daemon(bench)
    bench.commit(REV1, two_services("s", "app:v1"))
    rec.sync()
    held = Held(bench)
    bench.commit(REV2, two_services("s", "app:v2"))
    rec.sync()
    assert "rolled back to" in rollback_stack(bench.agent(), "s")
    bench.assert_converged(two_services("s", "app:v1"), REV1)
    held.release()
    rec.switch.settle()  # its stop and removal found the containers gone: nothing else happens
    bench.assert_converged(two_services("s", "app:v1"), REV1)
    assert len(bench.runtime.containers) == 2
