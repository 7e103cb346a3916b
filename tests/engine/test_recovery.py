"""Recovery after a crash at every ``crash_point`` of the switch, every time it is reached.

The agent "dies" by ``Crash`` (a BaseException nothing in the engine catches), leaving
the fake containers and the stored journal exactly as they were; a fresh agent on the
same device then syncs. Always: one container per service, no orphan, no kept
container, an empty journal; the commit is quarantined only when the new version was
at fault. tests/integration/test_crash_safety.py shows the same with SIGKILL on Docker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import gitops_edge.engine.switch
from gitops_edge.model.journal import Journal, Phase
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.ports.fakes import Crash, Run, Script
from tests.engine.conftest import REV1, REV2, Bench, CrashPoints, service, stack, two_services

SWITCH_SRC = Path(gitops_edge.engine.switch.__file__).read_text()
CRASH_POINTS = re.findall(r'crash_point\("([a-z-]+)"\)', SWITCH_SRC)


def test_the_crash_points_are_the_known_ones() -> None:
    assert set(CRASH_POINTS) == {
        "before-stop", "after-stop", "after-rename", "after-create", "after-start",
        "committing", "after-commit-remove", "rollback-after-remove",
    }


def hits(bench_setup: Callable[[Bench], str], crash_points: CrashPoints) -> list[str]:
    """The crash points one uncrashed sync of the scenario reaches, in order."""
    bench = Bench()
    bench_setup(bench)
    crash_points.arm("-none-")
    bench.sync()
    return list(crash_points.seen)


def good_update(bench: Bench) -> str:
    bench.commit(REV1, two_services("s", "app:v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    return bench.commit(REV2, two_services("s", "app:v2"))


def bad_update(bench: Bench) -> str:
    """v2's db is fine, its web turns unhealthy: the stack is rolled back, both waves."""
    bench.commit(REV1, two_services("s", "app:v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.runtime.script("web:v2", Script(Run.UNHEALTHY, after_s=3))
    return bench.commit(REV2, stack("s", service("db", "app:v2", port="5432"),
                                    service("web", "web:v2", after=("db",))))


def crash(bench: Bench, crash_points: CrashPoints, point: str, n: int) -> Journal:
    crash_points.arm(point, n)
    with pytest.raises(Crash):
        bench.sync()
    [(rev, phase, data)] = bench.store.journal().values()
    return Journal.from_data("s", rev, phase, data)


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p != "rollback-after-remove"])
def test_crash_during_a_good_update_then_the_next_sync_finishes_it(point: str, crash_points: CrashPoints) -> None:
    reached = hits(good_update, crash_points)
    assert point in reached
    for n in range(1, reached.count(point) + 1):
        bench = Bench()
        good_update(bench)
        journal = crash(bench, crash_points, point, n)
        assert journal.revision == REV2
        assert journal.phase is (Phase.SWITCHING if point not in ("committing", "after-commit-remove")
                                 else Phase.COMMITTING)
        assert bench.store.syncs[-1].outcome is Outcome.ERROR  # recorded as interrupted, where it was
        assert bench.store.syncs[-1].step in (Step.SWITCH, Step.COMMIT)

        crash_points.arm("-none-")
        result = bench.sync()
        assert result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED), (point, n, result.reason)
        bench.assert_converged(two_services("s", "app:v2"), REV2)
        assert bench.store.applied()["s"].revision == REV2
        assert bench.store.quarantined() == {}  # a crash is not the new version's fault
        assert len(bench.runtime.containers) == 2, (point, n)  # no orphan anywhere
        assert bench.sync().outcome is Outcome.UNCHANGED


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_during_a_bad_update_ends_rolled_back_and_quarantined(point: str, crash_points: CrashPoints) -> None:
    reached = hits(bad_update, crash_points)
    for n in range(1, reached.count(point) + 1):
        bench = Bench()
        bad_update(bench)
        v1 = {name: c.id for name, c in bench.containers("s").items()}
        journal = crash(bench, crash_points, point, n)
        at_fault = journal.phase is Phase.ROLLING_BACK
        assert at_fault == (point == "rollback-after-remove")
        assert bool(journal.failure) == at_fault

        crash_points.arm("-none-")
        result = bench.sync()
        # recovery restores v1; a crash before the verdict is retried in the same sync, and v2 fails again
        assert result.outcome is (Outcome.SKIPPED if at_fault else Outcome.ROLLED_BACK), (point, n)
        assert bench.live("s") == v1, (point, n)
        bench.assert_converged(two_services("s", "app:v1"), REV1)
        # no orphan: only the container that failed the gate again, set aside for `docker logs`
        assert len(bench.runtime.containers) == 2 + (0 if at_fault else 1)
        revision, reason = bench.store.quarantined()["s"]
        assert revision == REV2 and "service web failed the health gate" in reason
        assert bench.store.applied()["s"].revision == REV1


def test_crash_between_create_and_its_journal_write(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new container exists but the journal does not name it: recovery finds it by its labels."""
    good_update(bench)
    real_write = bench.store.journal_write

    def write_then_die(stack_name: str, revision: str, phase: str, data: dict[str, object]) -> None:
        if data.get("created"):
            raise Crash("between create and journal write")
        real_write(stack_name, revision, phase, data)

    monkeypatch.setattr(bench.store, "journal_write", write_then_die)
    with pytest.raises(Crash):
        bench.sync()
    [(_, _, data)] = bench.store.journal().values()
    assert data["created"] == [] and len(bench.runtime.stack("s")) == 3  # db kept, its successor unnamed
    monkeypatch.setattr(bench.store, "journal_write", real_write)

    assert bench.sync().outcome is Outcome.APPLIED
    bench.assert_converged(two_services("s", "app:v2"), REV2)
    assert len(bench.runtime.containers) == 2


def test_crash_while_repairing_drift_keeps_untouched_services(bench: Bench, crash_points: CrashPoints) -> None:
    """A switch at the same revision (a container vanished): undo only what this switch created."""
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    db = bench.containers("s")["s-db-1"].id
    bench.runtime.remove_container(bench.containers("s")["s-web-1"].id)
    crash(bench, crash_points, "after-create", 1)
    crash_points.arm("-none-")
    assert bench.sync().outcome is Outcome.APPLIED
    assert bench.containers("s")["s-db-1"].id == db
    bench.assert_converged(two_services("s", "app:v1"), REV1)


def test_crash_during_recovery_is_recovered_next_time(bench: Bench, crash_points: CrashPoints) -> None:
    bad_update(bench)
    v1 = {name: c.id for name, c in bench.containers("s").items()}
    crash(bench, crash_points, "after-start", 2)  # web:v2 started, gate not yet judged
    crash(bench, crash_points, "rollback-after-remove", 1)  # and again, while recovery rolls it back
    crash_points.arm("-none-")
    assert bench.sync().outcome is Outcome.ROLLED_BACK  # recovered, v2 tried again and refused
    assert bench.live("s") == v1
    bench.assert_converged(two_services("s", "app:v1"), REV1)
    assert bench.store.quarantined()["s"][0] == REV2
