"""The sync as named steps: where each kind of failure stops, what it leaves behind,
and what the daemon makes of it (quarantine, parking, backoff, stopped automation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gitops_edge.core import outcome
from gitops_edge.engine.manual_rollback import rollback_stack
from gitops_edge.engine.reconcile import STEPS
from gitops_edge.errors import (
    DesiredStateError,
    EngineConflictError,
    EngineUnavailableError,
    RollbackFailed,
    SourceError,
)
from gitops_edge.model.config import UpdateWindow
from gitops_edge.model.spec import ServiceSpec
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.ports.fakes import Run, Script
from tests.engine.conftest import REV1, REV2, REV3, Bench, service, stack, two_services


def test_steps_run_in_the_documented_order() -> None:
    """One list, in ``Step`` order; SWITCH hands GATE, COMMIT and ROLLBACK to the stack switch."""
    assert [s for s, _ in STEPS] == list(Step)[: len(STEPS)]
    assert [s for s, _ in STEPS][-1] is Step.SWITCH
    assert list(Step)[len(STEPS):] == [Step.GATE, Step.COMMIT, Step.ROLLBACK]


def test_no_change_stops_after_plan_and_writes_no_history(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    assert bench.sync().step is Step.COMMIT
    calls, rows = len(bench.runtime.calls), len(bench.store.syncs)
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.UNCHANGED, Step.PLAN)
    assert {op for op, _ in bench.runtime.calls[calls:]} == {"resolve_image", "observe", "fingerprint"}
    assert len(bench.store.syncs) == rows  # history keeps changes, failures and refusals only


def test_a_quarantined_commit_is_skipped_and_a_newer_one_applied(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    bench.runtime.script("app:v2", Script(Run.UNHEALTHY))
    bench.commit(REV2, two_services("s", "app:v2"))
    assert bench.sync().outcome is Outcome.ROLLED_BACK
    assert bench.store.quarantined()["s"][0] == REV2

    calls = len(bench.runtime.calls)
    again = bench.sync()  # the ref still points at the bad commit
    assert again.outcome is Outcome.SKIPPED and f"commit {REV2[:12]} is quarantined" in again.reason
    assert not [op for op, _ in bench.runtime.calls[calls:] if op not in ("observe", "fingerprint")]
    bench.assert_converged(two_services("s", "app:v1"), REV1)

    bench.commit(REV3, two_services("s", "app:v3"))
    newer = bench.sync()
    assert (newer.outcome, newer.step) == (Outcome.APPLIED, Step.COMMIT), newer.reason
    bench.assert_converged(two_services("s", "app:v3"), REV3)


def test_one_failing_stack_leaves_the_others_updated(bench: Bench) -> None:
    bench.commit(REV1, two_services("a", "app:v1"), two_services("b", "app:v1"))
    bench.sync()
    bench.runtime.script("bad:v2", Script(Run.EXIT, after_s=1))
    bench.commit(REV2, two_services("a", "bad:v2"), two_services("b", "app:v2"))
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.ROLLED_BACK, Step.GATE)  # b committed after a failed
    bench.assert_converged(two_services("a", "bad:v1"), REV1)
    bench.assert_converged(two_services("b", "app:v2"), REV2)
    assert set(bench.store.quarantined()) == {"a"}


@pytest.mark.parametrize(
    ("make_bad", "want", "step"),
    [
        (lambda b: b.bad_commit(REV2, DesiredStateError("s/compose.yaml:3: services.web: bad")),
         Outcome.ERROR, Step.LOAD),
        (lambda b: b.commit(REV2, stack("s", replace(service("web", "app:v2"), privileged=True))),
         Outcome.REFUSED, Step.SECURITY),
        (lambda b: (b.runtime.missing.add("app:gone"), b.commit(REV2, two_services("s", "app:gone"))),
         Outcome.ERROR, Step.VERIFY),
    ],
    ids=["invalid", "refused-by-policy", "image-not-in-registry"],
)
def test_a_bad_commit_is_permanent_and_changes_nothing(
    bench: Bench, make_bad: Callable[[Bench], object], want: Outcome, step: Step
) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    before = {n: (c.id, c.status) for n, c in bench.containers("s").items()}
    make_bad(bench)
    result = bench.sync()
    assert (result.outcome, result.step, result.revision) == (want, step, REV2), result.reason
    assert outcome.is_permanent(result)  # the daemon parks the commit until the ref moves
    assert not outcome.counts_as_failure(result)
    assert {n: (c.id, c.status) for n, c in bench.containers("s").items()} == before
    assert bench.store.quarantined() == {} and bench.store.journal() == {}
    assert bench.store.syncs[-1].step is step


def test_an_unreachable_source_is_retried_not_parked(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.source.error = SourceError("cannot reach fake://repo")
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.ERROR, Step.FETCH)
    assert outcome.counts_as_failure(result) and not outcome.is_permanent(result)


def test_engine_gone_during_the_gate_is_undone_not_quarantined(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    v1 = {n: c.id for n, c in bench.containers("s").items()}
    bench.runtime.script("app:v2", Script(Run.HEALTHY, after_s=5))
    bench.commit(REV2, two_services("s", "app:v2"))
    armed = {"n": 0}

    def engine_blips(op: str, _target: str) -> None:  # the first inspection of a new container fails
        if op == "create_container":
            armed["n"] += 1
        if op == "inspect_state" and armed["n"] == 1:
            armed["n"] += 1
            raise EngineUnavailableError("engine did not answer")

    bench.runtime.before = engine_blips
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.ERROR, Step.GATE)
    assert outcome.counts_as_failure(result)
    assert bench.store.quarantined() == {}
    assert {n: c.id for n, c in bench.containers("s").items()} == v1
    bench.runtime.before = None
    assert bench.sync().outcome is Outcome.APPLIED
    bench.assert_converged(two_services("s", "app:v2"), REV2)


def test_a_failed_rollback_stops_automation(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    bench.runtime.script("app:v2", Script(Run.UNHEALTHY))
    bench.commit(REV2, two_services("s", "app:v2"))
    renames = {"n": 0}

    def no_way_back(op: str, _target: str) -> None:  # renaming the kept db back fails
        if op == "rename_container":
            renames["n"] += 1
            if renames["n"] > 1:  # the switch renamed db, then db failed the gate
                raise EngineConflictError("name in use")

    bench.runtime.before = no_way_back
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.ROLLED_BACK, Step.ROLLBACK)
    assert isinstance(result.error, RollbackFailed)
    assert "rollback failed" in bench.store.stopped()["s"]
    bench.runtime.before = None
    later = bench.sync()
    assert later.outcome is Outcome.SKIPPED and "automation stopped" in later.reason


def test_a_lock_or_a_closed_window_holds_changes(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.store.lock_row = {"who": "tech", "reason": "maintenance"}
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.SKIPPED, Step.HOLD)
    assert result.reason == "device locked by tech: maintenance"
    assert bench.containers("s") == {}

    bench.store.lock_row = None
    # the fake clock's wall time is Monday 12:00 UTC; a window on Sundays is closed
    from datetime import time

    closed = replace(bench.config, update_windows=(UpdateWindow(("sun",), time(1), time(2)),))
    result = bench.agent(closed).sync()
    assert (result.outcome, result.step) == (Outcome.SKIPPED, Step.HOLD)
    assert result.reason.startswith("outside the update window; next opens Sun 01:00")
    assert bench.sync().outcome is Outcome.APPLIED


def test_a_stack_that_left_git_is_removed(bench: Bench) -> None:
    bench.commit(REV1, two_services("a", "app:v1"), two_services("b", "app:v1"))
    bench.sync()
    bench.commit(REV2, two_services("a", "app:v1"))
    result = bench.sync()
    assert (result.outcome, result.step) == (Outcome.APPLIED, Step.COMMIT)
    assert bench.containers("b") == {} and "b_default" not in bench.runtime.networks
    assert set(bench.store.applied()) == {"a"}


def test_manual_rollback_goes_back_and_quarantines(bench: Bench) -> None:
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    bench.commit(REV2, two_services("s", "app:v2"))
    bench.sync()
    note = rollback_stack(bench.agent(), "s")
    assert note.startswith(f"s: rolled back to {REV1[:12]}")
    bench.assert_converged(two_services("s", "app:v1"), REV1)
    assert bench.store.quarantined()["s"] == (REV2, "rolled back by hand")
    assert bench.sync().outcome is Outcome.SKIPPED  # the ref still points at REV2


def test_manual_rollback_after_a_failed_update_keeps_the_bad_commit_quarantined(bench: Bench) -> None:
    """REV3 failed and was rolled back to REV2; going back by hand to REV1 must not lift REV3's
    quarantine, or the next sync (the ref still at REV3) would apply the bad commit again."""
    bench.commit(REV1, two_services("s", "app:v1"))
    bench.sync()
    bench.commit(REV2, two_services("s", "app:v2"))
    bench.sync()
    bench.runtime.script("app:v3", Script(Run.UNHEALTHY))
    bench.commit(REV3, two_services("s", "app:v3"))
    assert bench.sync().outcome is Outcome.ROLLED_BACK
    rollback_stack(bench.agent(), "s")
    bench.assert_converged(two_services("s", "app:v1"), REV1)
    assert bench.store.quarantined()["s"][0] == REV3
    assert bench.sync().outcome is Outcome.SKIPPED
    bench.assert_converged(two_services("s", "app:v1"), REV1)


def test_a_container_nobody_labelled_is_replaced_not_doubled(bench: Bench) -> None:
    """Created by hand (no gitops-edge labels): taken over only when the device config says so
    (``security.adopt_projects``), then recreated under the agent, never two per service."""
    bench.runtime.add_container("s", "web")
    bench.commit(REV1, stack("s", ServiceSpec("web", "app:v1", restart="unless-stopped")))
    refused = bench.sync()
    assert (refused.outcome, refused.step) == (Outcome.REFUSED, Step.SECURITY)
    assert "security.adopt_projects" in refused.reason
    [hand_made] = bench.runtime.stack("s")
    assert not hand_made.managed
    adopting = replace(bench.config, security=replace(bench.config.security, adopt_projects=("s",)))
    assert bench.agent(adopting).sync().outcome is Outcome.APPLIED
    [c] = bench.runtime.stack("s")
    assert c.managed and c.revision == REV1 and c.name == "s-web-1"
