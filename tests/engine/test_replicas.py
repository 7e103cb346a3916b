"""N containers per service, as Docker Compose v2 runs ``deploy.replicas``/``scale``.

Replica n is ``<project>-<service>-n`` with ``container-number`` n. Scaling up
creates only the new numbers, scaling down removes the highest ones, a change
of image or configuration replaces every replica; the gate waits for all of
them and a rollback brings back the previous count and the very containers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gitops_edge.core.plan import format_plan, plan_stack
from gitops_edge.model.condition import Reason
from gitops_edge.model.journal import Journal, Phase
from gitops_edge.model.plan import ActionKind, Plan
from gitops_edge.model.spec import StackSpec
from gitops_edge.model.status import Outcome
from gitops_edge.ports.fakes import Crash, Run, Script
from gitops_edge.report.status_view import stack_conditions
from tests.engine.conftest import REV1, REV2, REV3, Bench, CrashPoints, service, stack

SWITCH_SRC = (Path(__file__).parents[2] / "gitops_edge" / "engine" / "switch.py").read_text()
CRASH_POINTS = re.findall(r'crash_point\("([a-z-]+)"\)', SWITCH_SRC)


def scaled(image: str, replicas: int, *, db_replicas: int = 1) -> StackSpec:
    """``db`` then ``web`` (start-first) with ``replicas`` containers."""
    return stack(
        "s",
        replace(service("db", "app:v1"), replicas=db_replicas),
        replace(service("web", image, after=("db",)), replicas=replicas),
    )


def numbers(bench: Bench) -> dict[str, tuple[int, str]]:
    """Live container name -> (its container-number, its id)."""
    return {name: (c.number, c.id) for name, c in bench.containers("s").items()}


def test_replicas_are_numbered_like_compose(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 3))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.assert_converged(scaled("app:v1", 3), REV1)
    assert {n: num for n, (num, _) in numbers(bench).items()} == {
        "s-db-1": 1, "s-web-1": 1, "s-web-2": 2, "s-web-3": 3,
    }
    assert bench.sync().outcome is Outcome.UNCHANGED


def test_scale_up_creates_only_the_new_numbers(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 1))
    bench.sync()
    before = numbers(bench)
    bench.runtime.calls.clear()
    bench.commit(REV2, scaled("app:v1", 3))
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED
    bench.assert_converged(scaled("app:v1", 3), None)
    after = numbers(bench)
    assert after["s-web-1"] == before["s-web-1"] and after["s-db-1"] == before["s-db-1"]  # untouched
    created = [c for op, c in bench.runtime.calls if op == "create_container"]
    assert created == ["s-web-2", "s-web-3"]
    # the untouched replica still carries REV1's label: only its spec matters (Compose does the same)
    assert bench.containers("s")["s-web-1"].revision == REV1


def test_scale_down_removes_the_highest_numbers(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 3))
    bench.sync()
    before = numbers(bench)
    bench.commit(REV2, scaled("app:v1", 1))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.assert_converged(scaled("app:v1", 1), REV1)  # the kept replicas were made by REV1
    assert numbers(bench) == {k: before[k] for k in ("s-db-1", "s-web-1")}
    assert bench.store.journal() == {}


def test_scale_to_zero_runs_no_container_and_dependents_start(bench: Bench) -> None:
    """Compose starts a dependent of a 0-replica service (even with service_healthy): so does the agent."""
    bench.commit(REV1, scaled("app:v1", 2))
    bench.sync()
    bench.commit(REV2, scaled("app:v1", 2, db_replicas=0))
    assert bench.sync().outcome is Outcome.APPLIED
    assert sorted(numbers(bench)) == ["s-web-1", "s-web-2"]
    [ready] = stack_conditions(bench.store, bench.runtime.observe())  # db is not "missing"
    assert (ready.reason, ready.message) == (Reason.READY, f"applied {REV2[:12]}, 1 service(s) up")
    bench.commit(REV3, scaled("app:v2", 2, db_replicas=0))  # a 0-replica dependency in a new update
    assert bench.sync().outcome is Outcome.APPLIED
    assert sorted(numbers(bench)) == ["s-web-1", "s-web-2"]
    assert all(c.image.startswith("app:v2") for c in bench.containers("s").values())


def test_an_image_change_replaces_every_replica(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 3))
    bench.sync()
    before = numbers(bench)
    bench.commit(REV2, scaled("app:v2", 3))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.assert_converged(scaled("app:v2", 3), None)
    after = numbers(bench)
    assert after["s-db-1"] == before["s-db-1"]
    for n in (1, 2, 3):
        assert after[f"s-web-{n}"][0] == n and after[f"s-web-{n}"][1] != before[f"s-web-{n}"][1]


def test_the_plan_names_each_replica(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 3))
    bench.sync()
    observed = bench.runtime.observe().for_stack("s")
    db = bench.containers("s")["s-db-1"].image
    pinned = {"db": db, "web": "app:v2"}
    down = plan_stack(scaled("app:v2", 2), REV2, observed, pinned, scaled("app:v1", 3))
    kinds = [(a.kind, a.service, a.number) for a in down.actions]
    assert kinds == [(ActionKind.REMOVE, "web", 3), (ActionKind.RECREATE, "web", 1),
                     (ActionKind.RECREATE, "web", 2)]
    lines = format_plan(Plan(REV2, (down,)))  # the CLI's lines
    assert "  remove web #3: scaled 3 -> 2" in lines
    assert any(line.startswith("  recreate web #1 (start-first): image changed") for line in lines), lines
    web = bench.containers("s")["s-web-1"].image
    up = plan_stack(scaled("app:v1", 4), REV2, observed, {"db": db, "web": web}, scaled("app:v1", 3))
    assert [(a.kind, a.number, a.reason) for a in up.actions] == [(ActionKind.CREATE, 4, "scaled 3 -> 4")]


def test_the_gate_waits_for_every_replica(bench: Bench) -> None:
    """Only the third replica turns unhealthy: the whole stack goes back, all three old replicas run."""
    bench.commit(REV1, scaled("app:v1", 3))
    bench.sync()
    before = numbers(bench)

    def third_is_bad(operation: str, target: str) -> None:
        if operation == "start_container":
            c = bench.runtime.containers[target]
            if c.name == "s-web-3" and c.image.startswith("app:v2"):
                c.script = Script(Run.UNHEALTHY, after_s=5)

    bench.runtime.before = third_is_bad
    bench.runtime.script("app:v2", Script(Run.HEALTHY, after_s=1))
    bench.commit(REV2, scaled("app:v2", 3))
    result = bench.sync()
    assert result.outcome is Outcome.ROLLED_BACK
    assert "service web failed the health gate" in result.reason
    assert [e.container for e in result.evidence] == ["s-web-3"]
    assert bench.live("s") == {k: v[1] for k, v in before.items()}
    bench.assert_converged(scaled("app:v1", 3), REV1)


@pytest.mark.parametrize(("old", "new"), [(3, 3), (2, 3), (3, 1)])
def test_a_failed_update_rolls_back_to_the_previous_count_and_containers(bench: Bench, old: int, new: int) -> None:
    bench.commit(REV1, scaled("app:v1", old))
    bench.sync()
    before = numbers(bench)
    bench.runtime.script("bad:v2", Script(Run.EXIT, after_s=1))
    bench.commit(REV2, scaled("bad:v2", new))
    assert bench.sync().outcome is Outcome.ROLLED_BACK
    assert bench.live("s") == {k: v[1] for k, v in before.items()}
    bench.assert_converged(scaled("app:v1", old), REV1)
    assert bench.store.quarantined()["s"][0] == REV2


def good(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 3))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.commit(REV2, scaled("app:v2", 2))


def bad(bench: Bench) -> None:
    bench.commit(REV1, scaled("app:v1", 2))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.runtime.script("bad:v2", Script(Run.UNHEALTHY, after_s=3))
    bench.commit(REV2, scaled("bad:v2", 3))


def reached(setup: Callable[[Bench], None], crash_points: CrashPoints) -> list[str]:
    bench = Bench()
    setup(bench)
    crash_points.arm("-none-")
    bench.sync()
    return list(crash_points.seen)


@pytest.mark.parametrize("setup", [good, bad])
def test_a_crash_anywhere_in_a_replica_switch_is_recovered(
    setup: Callable[[Bench], None], crash_points: CrashPoints
) -> None:
    """At every crash point, every time it is reached: the next sync ends with the new count
    (good update) or the old count and containers (bad update), and no orphan."""
    seen = reached(setup, crash_points)
    assert set(seen) <= set(CRASH_POINTS)
    for point in sorted(set(seen)):
        for n in range(1, seen.count(point) + 1):
            bench = Bench()
            setup(bench)
            before = {k: v[1] for k, v in numbers(bench).items()}
            crash_points.arm(point, n)
            with pytest.raises(Crash):
                bench.sync()
            [(rev, phase, data)] = bench.store.journal().values()
            assert Journal.from_data("s", rev, phase, data).phase in set(Phase)
            crash_points.arm("-none-")
            result = bench.sync()
            if setup is good:
                assert result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED), (point, n, result.reason)
                bench.assert_converged(scaled("app:v2", 2), None)
                assert {c.revision for c in bench.containers("s").values()} == {REV1, REV2}  # db untouched
                assert len(bench.runtime.containers) == 3, (point, n)
            else:
                assert bench.live("s") == before, (point, n)
                bench.assert_converged(scaled("app:v1", 2), REV1)
                failed = 0 if point == "rollback-after-remove" else 1  # set aside for `docker logs`
                assert len(bench.runtime.containers) == 3 + failed, (point, n)


def test_a_crash_while_one_replica_is_repaired_keeps_the_others(bench: Bench, crash_points: CrashPoints) -> None:
    """A replica removed by hand is recreated at the same revision; a crash then undoes only it."""
    bench.commit(REV1, scaled("app:v1", 3))
    bench.sync()
    before = numbers(bench)
    bench.runtime.remove_container(before["s-web-2"][1])
    crash_points.arm("after-create", 1)
    with pytest.raises(Crash):
        bench.sync()
    crash_points.arm("-none-")
    assert bench.sync().outcome is Outcome.APPLIED
    after = numbers(bench)
    assert after["s-web-1"] == before["s-web-1"] and after["s-web-3"] == before["s-web-3"]
    bench.assert_converged(scaled("app:v1", 3), REV1)
